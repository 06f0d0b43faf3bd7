"""Shared fixtures: a tiny trained FUNIT checkpoint (trained once per test session), one torch thread."""

import pytest

from test_train_support import tiny_cohort  # noqa: F401  (fixture re-exported for every test module)


@pytest.fixture(scope="session")
def tiny_funit_checkpoint(tiny_cohort, tmp_path_factory):  # noqa: F811
    """A FUNIT checkpoint of the tiny preset, trained 2 steps on the tiny cohort (CPU)."""
    pytest.importorskip("torch")
    from MicroCTLikeLib import cli

    run = tmp_path_factory.mktemp("tiny_funit") / "run"
    argv = ["train", "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort), "--out", str(run),
            "--steps", "2", "--seed", "1", "--quiet"]
    assert cli.main(argv) == 0
    return run / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks run fastest on one thread (and do not fight other test workers)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def scene():
    """A fresh real MRML scene (slicer-core) as ``slicer.mrmlScene``, cleared afterwards."""
    slicer = pytest.importorskip("slicer", reason="slicer-core wheel is a dev dependency (pip install slicer-core)")
    slicer.mrmlScene = slicer.vtkMRMLScene()
    yield slicer.mrmlScene
    slicer.mrmlScene.Clear(0)
