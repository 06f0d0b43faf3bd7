"""The generation worker as the Slicer module (and a web front-end) drives it, on a real MRML scene:
the input node is never written, the output is a new node beside the input in the study, the
device and time come back, Cancel leaves no process and no temporary folder."""

import os
import time

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core wheel is a dev dependency (pip install slicer-core)")
pytest.importorskip("torch")
psutil = pytest.importorskip("psutil", reason="psutil is a dependency of the library (process-tree cancel)")

from MicroCTLikeLib import mrml  # noqa: E402
from MicroCTLikeLib.errors import CancelledError  # noqa: E402
from MicroCTLikeLib.volume import Volume  # noqa: E402


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    from MicroCTLikeLib.train.untrained import write_untrained_checkpoint

    return write_untrained_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", seed=3)


def _mdct():
    rng = np.random.default_rng(5)
    return Volume(rng.integers(-200, 1500, (6, 24, 20)).astype(np.int16), spacing_xyz_mm=(0.4, 0.4, 0.5),
                  origin_lps_mm=(3.0, -2.0, 10.0))


def _snapshot(node):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return (slicer.util.arrayFromVolume(node).tobytes(), str(slicer.util.arrayFromVolume(node).dtype),
            tuple(matrix.GetElement(r, c) for r in range(4) for c in range(4)), node.GetName())


def test_generate_writes_a_new_node_beside_the_input_and_never_the_input(scene, untrained_model):
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient"), "Study")
    input_node = mrml.node_from_volume(_mdct(), "MDCT")
    sh.CreateItem(study, input_node)
    before = _snapshot(input_node)
    input_mtime = input_node.GetImageData().GetMTime()
    # the input chosen as the output (what the selector no longer offers) still gives a new node
    runner = mrml.start_generation_worker(input_node, model_path=untrained_model, device="cpu", region="whole",
                                         threads=1)
    output = mrml.finish_generation_worker(runner, runner.wait(timeout_s=600), output_node=input_node)
    assert output is not input_node and output.GetAttribute(mrml.worker.OUTPUT_ATTRIBUTE) == "micro-CT-like"
    assert _snapshot(input_node) == before and input_node.GetImageData().GetMTime() == input_mtime
    assert sh.GetItemParent(sh.GetItemByDataNode(output)) == study  # under the input's study
    assert runner.summary["device"] == "cpu" and runner.summary["seconds"] >= 0
    assert runner.summary["wall_seconds"] >= runner.summary["seconds"]
    assert "on cpu" in mrml.generation_report_text(runner.summary)
    assert not runner.work_dir.exists()
    # a second run into the previous output reuses that node
    runner = mrml.start_generation_worker(input_node, model_path=untrained_model, device="cpu", region="whole",
                                         threads=1)
    again = mrml.finish_generation_worker(runner, runner.wait(timeout_s=600), output_node=output)
    assert again is output and _snapshot(input_node) == before


def test_cancel_leaves_no_process_and_no_temporary_folder(scene, untrained_model):
    input_node = mrml.node_from_volume(_mdct(), "MDCT")
    runner = mrml.start_generation_worker(input_node, model_path=untrained_model, device="cpu", region="whole",
                                         threads=1)
    worker = psutil.Process(runner.process.pid)
    time.sleep(0.5)  # the worker is importing torch
    family = [worker] + worker.children(recursive=True)
    runner.cancel()
    with pytest.raises(CancelledError):
        runner.wait(timeout_s=30)
    mrml.cleanup_generation_worker(runner)
    assert not runner.work_dir.exists()
    for proc in family:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc
    assert not psutil.pid_exists(runner.process.pid)


def test_memory_estimate_for_a_whole_clinical_series(scene):
    """512 x 512 x 300 at 0.7 x 0.7 x 0.625 mm -> 0.104 mm in-plane: the size a radiologist is warned about."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "clinical")
    image = __import__("vtk").vtkImageData()
    image.SetDimensions(512, 512, 300)
    image.AllocateScalars(__import__("vtk").VTK_SHORT, 1)
    node.SetAndObserveImageData(image)
    node.SetSpacing(0.7, 0.7, 0.625)
    estimate = mrml.estimate_generation_memory(node, target_spacing_mm=0.104)
    nx = round(512 * 0.7 / 0.104)
    assert estimate["shape_xyz"] == (nx, nx, 300)
    assert estimate["worker_bytes"] == nx * nx * 300 * mrml.worker.WORKER_BYTES_PER_VOXEL
    assert estimate["slicer_bytes"] / 2**30 > 10  # the output alone, float32 in Slicer, is > 10 GiB
    assert "GiB" in estimate["message"]


def test_summary_is_read_from_the_worker_output():
    lines = ["PROGRESS 1/2", "note", "{", '  "device": "cuda:0",', '  "seconds": 1.5,', '  "n_slices": 2', "}"]
    assert mrml.parse_generation_summary(lines) == {"device": "cuda:0", "seconds": 1.5, "n_slices": 2}
    assert mrml.parse_generation_summary(["no summary"]) == {}


def test_csv_export_has_titles_with_units(scene, tmp_path):
    import csv

    rows = [{"volume": "MDCT", "voi": "superior", "bv_tv": 0.2, "tb_th_mm": 0.25, "tb_sp_mm": 0.9}]
    table = mrml.metrics_table_node(rows, scene=scene)
    path = mrml.export_table_csv(table, tmp_path / "metrics.csv")
    with open(path, encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert read == [{"Volume": "MDCT", "VOI": "superior", "BV/TV": "0.2", "Tb.Th (mm)": "0.25", "Tb.Sp (mm)": "0.9"}]
    assert oct(os.stat(path).st_mode & 0o777) != "0o600"  # an ordinary file, not a private temp file
