"""The end-to-end demo (held-out simulated vertebra) and the similarity/report helpers."""

import json

import numpy as np
import pytest

from MicroCTLikeLib.evaluate.similarity import sample_on_grid, ssim_8bit, window_to_8bit
from MicroCTLikeLib.volume import Volume


def test_ssim_uses_the_wang_settings():
    from skimage.metrics import structural_similarity

    from scipy import ndimage

    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.standard_normal((40, 50)), 3)
    a = np.clip(128 + 400 * smooth, 0, 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    assert ssim_8bit(a, a) == pytest.approx(1.0)
    expected = structural_similarity(a.astype(float), b.astype(float), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
    assert ssim_8bit(a, b) == pytest.approx(expected)
    # skimage's defaults give another number: the settings matter
    assert abs(structural_similarity(a, b) - expected) > 0.01
    stack = np.stack([a, b])
    assert ssim_8bit(stack, np.stack([a, a])) == pytest.approx((1.0 + ssim_8bit(b, a)) / 2)


def test_window_to_8bit_maps_and_clips():
    out = window_to_8bit(np.array([-300.0, -200.0, 800.0, 1800.0, 5000.0]), (-200.0, 1800.0))
    assert out.tolist() == [0, 0, 128, 255, 255]


def test_sample_on_grid_reads_physical_positions():
    # a linear ramp in x (mm) sampled on a finer, shifted, rotated grid returns the ramp
    fine_x = np.arange(40) * 0.5
    ramp = np.broadcast_to(fine_x, (6, 30, 40)).astype(np.float32)
    source = Volume(ramp, spacing_xyz_mm=(0.5, 0.5, 0.5))
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    reference = Volume(np.zeros((2, 10, 10)), spacing_xyz_mm=(0.3, 0.3, 0.5), origin_lps_mm=(5.0, 5.0, 1.0),
                       direction_lps=rot)
    values = sample_on_grid(source, reference, antialias=False)
    expected_x = reference.index_zyx_to_lps(np.stack(np.meshgrid(*[np.arange(n) for n in (2, 10, 10)],
                                                                 indexing="ij"), -1))[..., 0]
    np.testing.assert_allclose(values, expected_x, atol=1e-4)


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, tiny_funit_checkpoint):
    from MicroCTLikeLib.evaluate.demo import run_demo

    report = run_demo(tmp_path / "demo", model_path=tiny_funit_checkpoint, device="cpu", log=lambda m: None)
    out = tmp_path / "demo"
    for name in ("report.json", "report.md", "report.html", "figure.png", "mdct.nrrd", "microct.nrrd",
                 "microct_like.nrrd"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["measurements"]) == {"MDCT", "micro-CT-like", "micro-CT", "truth (binary)"}
    for entries in saved["measurements"].values():
        assert [e["voi_name"] for e in entries] == ["superior", "inferior"]
        assert all(0 < e["bv_tv"] < 1 and e["tb_th_mm"] > 0 for e in entries)
    # the classic MDCT overestimate of thickness against the truth, and the grey micro-CT close to the truth
    mdct_th = np.mean([e["tb_th_mm"] for e in saved["measurements"]["MDCT"]])
    truth_th = np.mean([e["tb_th_mm"] for e in saved["measurements"]["truth (binary)"]])
    micro_th = np.mean([e["tb_th_mm"] for e in saved["measurements"]["micro-CT"]])
    assert mdct_th > 2 * truth_th
    assert abs(micro_th - truth_th) / truth_th < 0.25
    assert report["generation"]["region"]["kind"] == "standard-vois"
    assert "Metrics per VOI" in (out / "report.md").read_text()
    with pytest.raises(Exception, match="not empty|exists"):
        run_demo(out, model_path=tiny_funit_checkpoint, device="cpu", log=lambda m: None)


def test_summary_means_and_errors_are_per_voi():
    from MicroCTLikeLib.evaluate.specimen import summarise

    def entry(name, bv, th, sp):
        return {"voi_name": name, "bv_tv": bv, "tb_th_mm": th, "tb_sp_mm": sp}

    case = {
        "ssim": {"MDCT": {"superior": 0.2, "inferior": 0.3}, "micro-CT-like": {"superior": 0.5, "inferior": 0.6}},
        "measurements": {
            "MDCT": [entry("superior", 0.3, 1.0, 1.5), entry("inferior", 0.3, 0.8, 1.7)],
            "micro-CT-like": [entry("superior", 0.15, 0.25, 0.9), entry("inferior", 0.1, 0.15, 1.1)],
            "micro-CT": [entry("superior", 0.12, 0.2, 1.0), entry("inferior", 0.12, 0.2, 1.0)],
        },
    }
    summary = summarise([case, case])
    assert summary["n_specimens"] == 2 and summary["n_vois"] == 4
    assert summary["ssim_mean"] == pytest.approx({"MDCT": 0.25, "micro-CT-like": 0.55})
    assert summary["metric_means"]["MDCT"]["tb_th_mm"] == pytest.approx(0.9)
    errors = summary["mean_abs_error_vs_micro-CT"]
    assert errors["MDCT"]["tb_th_mm"] == pytest.approx(0.7)
    assert errors["micro-CT-like"]["tb_th_mm"] == pytest.approx(0.05)
    assert errors["micro-CT-like"]["bv_tv"] == pytest.approx(0.025)
    assert "mean_abs_error_vs_truth" not in summary


def test_old_module_names_stay_importable():
    import MicroCTLikeLib.demo as old_demo
    import MicroCTLikeLib.evaluation as old_evaluation
    import MicroCTLikeLib.report as old_report
    import MicroCTLikeLib.similarity as old_similarity
    from MicroCTLikeLib.evaluate import demo, report, similarity, specimen

    assert old_evaluation.evaluate_cohort is specimen.evaluate_cohort
    assert old_similarity.ssim_8bit is similarity.ssim_8bit
    assert old_report.write_markdown_and_html is report.write_markdown_and_html
    assert old_demo.run_demo is demo.run_demo
