"""`microctlike generate` as a user runs it, and the Slicer module's out-of-process worker."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from MicroCTLikeLib.errors import CancelledError  # noqa: E402
from MicroCTLikeLib.volume import read_volume  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tiny_funit_checkpoint):
    return tiny_funit_checkpoint


def _microctlike(*args):
    return subprocess.run([sys.executable, "-m", "MicroCTLikeLib", *map(str, args)], capture_output=True, text=True, encoding="utf-8", errors="replace",
                          timeout=300)


def test_generate_writes_an_overlaying_volume(tiny_cohort, checkpoint, tmp_path):
    mdct_path = tiny_cohort / "case002" / "mdct.nrrd"
    out = tmp_path / "like.nrrd"
    result = _microctlike("generate", mdct_path, "--out", out, "--model", checkpoint, "--device", "cpu", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    mdct, like = read_volume(mdct_path), read_volume(out)
    assert report["n_slices"] == mdct.shape_zyx[0] == like.shape_zyx[0]
    assert report["device"] == "cpu" and report["mode"] == "whole"
    assert like.spacing_xyz_mm[:2] == pytest.approx((0.104, 0.104))
    # same field of view: the outer pixel corners coincide (within the rounding of the pixel count)
    for like_corner, mdct_corner in (
        ([0, -0.5, -0.5], [0, -0.5, -0.5]),
        ([0, like.shape_zyx[1] - 0.5, like.shape_zyx[2] - 0.5], [0, mdct.shape_zyx[1] - 0.5, mdct.shape_zyx[2] - 0.5]),
    ):
        np.testing.assert_allclose(like.index_zyx_to_lps(like_corner), mdct.index_zyx_to_lps(mdct_corner), atol=0.06)
    # refuses to overwrite without --force
    again = _microctlike("generate", mdct_path, "--out", out, "--model", checkpoint, "--device", "cpu")
    assert again.returncode == 1 and "--force" in again.stderr and "Traceback" not in again.stderr


def test_corrupt_and_foreign_checkpoints_give_clear_errors(tiny_cohort, tmp_path):
    mdct_path = tiny_cohort / "case002" / "mdct.nrrd"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 100)
    result = _microctlike("generate", mdct_path, "--out", tmp_path / "o.nrrd", "--model", corrupt, "--device", "cpu")
    assert result.returncode == 1 and "corrupt.pt" in result.stderr and "Traceback" not in result.stderr
    import torch

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    result = _microctlike("generate", mdct_path, "--out", tmp_path / "o.nrrd", "--model", foreign, "--device", "cpu")
    assert result.returncode == 1 and "foreign.pt" in result.stderr and "Traceback" not in result.stderr
    missing = _microctlike("generate", mdct_path, "--out", tmp_path / "o.nrrd", "--model", tmp_path / "none.pt")
    assert missing.returncode == 1 and "not found" in missing.stderr


slicer = pytest.importorskip("slicer", reason="slicer-core wheel is a dev dependency")


def test_slicer_worker_generates_into_a_node_and_cleans_up(tiny_cohort, checkpoint):
    from MicroCTLikeLib import mrml

    slicer.mrmlScene = slicer.vtkMRMLScene()
    mdct = read_volume(tiny_cohort / "case002" / "mdct.nrrd")
    input_node = mrml.node_from_volume(mdct, "MDCT")
    progress = []
    runner = mrml.start_generation_worker(input_node, model_path=checkpoint, device="cpu", region="whole",
                                                  on_progress=lambda d, t, m: progress.append((d, t)))
    code = runner.wait(timeout_s=300)
    output_node = mrml.finish_generation_worker(runner, code)
    assert output_node.GetName() == "MDCT micro-CT-like"
    assert slicer.util.arrayFromVolume(output_node).shape[0] == mdct.shape_zyx[0]
    assert progress[-1] == (mdct.shape_zyx[0], mdct.shape_zyx[0])
    assert not runner.work_dir.exists()
    np.testing.assert_array_equal(mrml.volume_from_node(input_node).array, mdct.array)  # input untouched


def test_slicer_worker_cancel(tiny_cohort, checkpoint):
    from MicroCTLikeLib import mrml

    slicer.mrmlScene = slicer.vtkMRMLScene()
    input_node = mrml.node_from_volume(read_volume(tiny_cohort / "case002" / "mdct.nrrd"), "MDCT")
    runner = mrml.start_generation_worker(input_node, model_path=checkpoint, device="cpu", region="whole")
    runner.cancel()
    with pytest.raises(CancelledError):
        runner.wait(timeout_s=30)
    mrml.cleanup_generation_worker(runner)
    assert not runner.work_dir.exists()


def test_exported_inference_checkpoint_is_small_and_generates_the_same(tiny_cohort, checkpoint, tmp_path):
    import torch

    from MicroCTLikeLib.train.checkpoint import export_inference_checkpoint, load_checkpoint, load_inference_model

    slim = export_inference_checkpoint(checkpoint, tmp_path / "slim.pt")
    payload = load_checkpoint(slim)
    assert payload["inference_only"] and "optimizers" not in payload and "networks" not in payload
    assert slim.stat().st_size < checkpoint.stat().st_size / 2
    full_generator, full_meta = load_inference_model(checkpoint)
    slim_generator, slim_meta = load_inference_model(slim)
    assert slim_meta["normalisation"] == full_meta["normalisation"]
    x = torch.rand(1, 1, 48, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(full_generator(x), slim_generator(x))


def test_generate_views_option(tiny_cohort, checkpoint, tmp_path):
    """--views all writes the same grid as the axial default (and differs from it); bad names are usage errors."""
    mdct_path = tiny_cohort / "case002" / "mdct.nrrd"
    axial, views = tmp_path / "axial.nrrd", tmp_path / "views.nrrd"
    for out, extra in ((axial, []), (views, ["--views", "all"])):
        result = _microctlike("generate", mdct_path, "--out", out, "--model", checkpoint, "--device", "cpu",
                              "--json", *extra)
        assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["views"] == ["axial", "coronal", "sagittal"] and "averaged" in report["notes"][-1]
    a, v = read_volume(axial), read_volume(views)
    assert a.shape_zyx == v.shape_zyx and a.spacing_xyz_mm == pytest.approx(v.spacing_xyz_mm)
    np.testing.assert_allclose(a.origin_lps_mm, v.origin_lps_mm)
    assert np.isfinite(v.array).all() and float(np.abs(a.array - v.array).mean()) > 0
    bad = _microctlike("generate", mdct_path, "--out", tmp_path / "bad.nrrd", "--views", "axial+oblique")
    assert bad.returncode == 2 and "views must be distinct names" in bad.stderr and not (tmp_path / "bad.nrrd").exists()
    bad = _microctlike("evaluate", "--data", tiny_cohort, "--views", "")
    assert bad.returncode == 2 and "views must be distinct names" in bad.stderr
