"""The generator's reporting utilities: the model card's ablation record and the thickness
diagnosis's chord lengths (checked on shapes whose chords are known exactly)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

UTILITIES = Path(__file__).resolve().parents[2] / "Utilities"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, UTILITIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chord_lengths_of_a_slab_and_of_rods():
    chord = _load("diagnose_thickness").mean_chord_mm
    slab = np.zeros((20, 10, 10), bool)
    slab[5:9] = True  # 4 voxels thick along z, through along y and x
    assert chord(slab, 0, 0.05) == pytest.approx(0.20)
    assert chord(slab, 1, 0.05) == pytest.approx(0.50)
    rods = np.zeros((6, 12, 12), bool)
    rods[:, 2:5, 2:4] = True  # 3 x 2 voxel rod along z
    rods[:, 8:9, 6:11] = True  # 1 x 5 voxel rod
    # along x: chords of 2 (3 rows) and 5 (1 row); mean over the 4 runs per slice
    assert chord(rods, 2, 1.0) == pytest.approx((3 * 2 + 5) / 4)
    assert np.isnan(chord(np.zeros((3, 3, 3), bool), 0, 1.0))


def _evaluation(step, ssim_like):
    agree = {m: {"r2": 0.5, "icc_a1": 0.4} for m in ("bv_tv", "tb_th_mm", "tb_sp_mm")}
    return {"model_step": step, "summary": {"ssim_mean": {"micro-CT-like": ssim_like, "MDCT": 0.2},
                                            "ssim_like_above_mdct_fraction": 0.75,
                                            "agreement_vs_micro-CT": {"micro-CT-like": agree}}}


def test_ablation_record_keeps_earlier_rows_and_replaces_re_evaluated_ones(tmp_path):
    card = _load("write_model_card")
    record_path = tmp_path / "ablation_record.json"
    record_path.write_text(json.dumps({
        "reference": {"steps": 1000, "ssim_like": 0.05, "ssim_mdct": 0.17, "above_fraction": 0.0,
                      "r2": [0.1, 0.0, 0.5], "icc_a1": [0.0, 0.0, 0.2], "measured": "2026-12-01"},
        "spectrum": {"steps": 10, "ssim_like": 0.01, "ssim_mdct": 0.2, "above_fraction": 0.0,
                     "r2": [0, 0, 0], "icc_a1": [0, 0, 0], "measured": "2026-12-01"}}))
    runs = tmp_path / "ablation"
    runs.mkdir()
    (runs / "spectrum.json").write_text(json.dumps(_evaluation(4000, 0.26)))
    (runs / "no_norm.failed").write_text("diverged at step 3\n")
    record = card.update_record(record_path, runs, "2026-12-02")
    assert record["reference"]["measured"] == "2026-12-01"  # kept: its run folder is gone
    assert record["spectrum"] == {"steps": 4000, "ssim_like": 0.26, "ssim_mdct": 0.2, "above_fraction": 0.75,
                                  "r2": [0.5] * 3, "icc_a1": [0.4] * 3, "measured": "2026-12-02"}
    assert json.loads(record_path.read_text()) == record
    table = card.ablation_table(record)
    rows = [line for line in table[2:]]
    assert [row.split(" | ")[0] for row in rows] == [  # the table follows VARIANTS' order
        "| " + title for name, title in card.VARIANTS if name in record]
    assert "0.260 / 0.200 | 75 % | 0.50, 0.50, 0.50 | 0.40, 0.40, 0.40 | 2026-12-02" in table[-1]
    assert "diverged at step 3" in next(row for row in rows if "without normalisation" in row)
