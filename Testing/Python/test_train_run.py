"""Training runs of the four models (tiny presets, CPU): losses, checkpoints, exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from MicroCTLikeLib import cli
from MicroCTLikeLib.models import registry
from MicroCTLikeLib.train.checkpoint import load_checkpoint, load_inference_model
from MicroCTLikeLib.train.runlog import read_log
from test_train_support import tiny_cohort  # noqa: F401  (fixture)

# FUNIT as the brief says (6 straight vs 3 + resume + 3); the comparators 4 vs 2 + 2.
STEPS = {"funit": 6, "cyclegan": 4, "stargan": 6, "pix2pixhd": 4}


def _train(cohort, out, model, steps, *extra):
    argv = ["train", "--model", model, "--preset", "tiny", "--data", str(cohort), "--out", str(out),
            "--steps", str(steps), "--seed", "3", "--quiet", "--set", "log_every=1", "--set", "sample_every=2",
            "--set", "cpu_threads=1"]  # tiny nets: one thread is fastest, and immune to a busy machine
    assert cli.main(argv + list(extra)) == 0


@pytest.fixture(scope="module", params=registry.MODEL_NAMES)
def runs(request, tiny_cohort, tmp_path_factory):
    """(model, straight run folder, interrupted-and-resumed run folder)."""
    model = request.param
    steps = STEPS[model]
    root = tmp_path_factory.mktemp(model)
    _train(tiny_cohort, root / "straight", model, steps)
    _train(tiny_cohort, root / "resumed", model, steps // 2)
    # a killed run leaves later log rows and a newer sample behind; resume must drop the rows
    (root / "resumed" / "log.csv").write_text((root / "resumed" / "log.csv").read_text() + f"{steps},9.9,123.0\n")
    assert cli.main(["train", "--out", str(root / "resumed"), "--steps", str(steps), "--resume", "--quiet"]) == 0
    return model, root / "straight", root / "resumed"


def test_losses_finite_and_logged(runs):
    model, straight, _ = runs
    rows = read_log(straight / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS[model] + 1))
    losses = [v for r in rows for k, v in r.items() if k not in ("step", "time_s")]
    assert len(losses) >= 2 * STEPS[model] and all(math.isfinite(v) for v in losses)
    assert (straight / "samples" / "step_0000002.png").is_file()
    from PIL import Image

    with Image.open(straight / "samples" / "step_0000002.png") as png:  # 4 rows of MDCT | G(MDCT) | micro-CT
        assert png.size == (3 * 32 + 4, 4 * 32 + 3 * 2)


def test_resume_is_bit_identical(runs):
    """Killing after half the steps and resuming follows the straight run exactly (CPU)."""
    model, straight, resumed = runs
    a, b = read_log(straight / "log.csv"), read_log(resumed / "log.csv")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]
    assert strip(a) == strip(b)
    ca = load_checkpoint(straight / "checkpoints" / "last.pt")
    cb = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert ca["step"] == cb["step"] == STEPS[model]
    for key in ("networks", "optimizers", "extra_state", "inference_generator", "sampler", "rng"):
        _assert_identical(ca[key], cb[key], key)


def _assert_identical(x, y, where):
    if isinstance(x, dict):
        assert set(x) == set(y), where
        for key in x:
            _assert_identical(x[key], y[key], f"{where}/{key}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            _assert_identical(u, v, f"{where}[{i}]")
    elif torch.is_tensor(x):
        assert torch.equal(x, y), where
    else:
        assert x == y, where


def test_checkpoint_round_trips_for_inference(runs, tiny_cohort):
    """The stand-alone inference weights give exactly what the full resumable state gives."""
    model, straight, _ = runs
    path = straight / "checkpoints" / "last.pt"
    generator, meta = load_inference_model(path, "cpu", expected_model=model)
    x = torch.rand(2, 1, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        y = generator(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1
    # second path: rebuild the whole model from the resumable state
    payload = load_checkpoint(path)
    full = registry.build_model(payload["model"]["config"])
    for name, net in full.networks().items():
        net.load_state_dict(payload["networks"][name])
    full.load_extra_state(payload["extra_state"])
    reference = full.inference_generator().eval()
    with torch.no_grad():
        assert torch.equal(reference(x), y)
    # metadata a generation engine needs
    fresh = registry.build_model(registry.model_config(model, "tiny"))
    assert meta["parameters"] == fresh.parameter_counts()
    assert meta["model"]["name"] == model and meta["model"]["config"]["preset"] == "tiny"
    assert meta["normalisation"]["mdct_window_hu"] == [-200.0, 1800.0]
    assert meta["normalisation"]["target_spacing_mm"] == meta["target_spacing_mm"] == pytest.approx(0.104)
    lo, hi = meta["normalisation"]["microct_window"]
    assert 500 < lo < hi < 12000
    assert meta["training_data"]["case_ids"] == ["case000", "case001"]  # the manifest's train split
    assert meta["training_data"]["cohort"] == str(tiny_cohort)
    assert meta["format_version"] == 1 and "networks" not in meta
    assert meta["config"]["seed"] == 3 and meta["config"]["crop_px"] == 32


def test_step_checkpoints_and_config_written(runs):
    model, straight, _ = runs
    import json

    config = json.loads((straight / "config.json").read_text())
    assert config["model"] == model and config["steps"] == STEPS[model]
    assert config["microct_window"] is not None  # the data-derived window is recorded for resume
    step_file = straight / "checkpoints" / f"step_{STEPS[model]:07d}.pt"
    assert step_file.is_file()
    assert load_checkpoint(step_file)["step"] == STEPS[model]
    assert not list((straight / "checkpoints").glob("*.tmp"))


def test_refuses_nonempty_run_dir_and_resume_mismatch(tiny_cohort, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    argv = ["train", "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort), "--out", str(out), "--steps", "1",
            "--quiet", "--set", "cpu_threads=1"]
    assert cli.main(argv) == 1
    assert "--force" in capsys.readouterr().err
    assert cli.main(argv + ["--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert cli.main(argv + ["--force"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    # resuming as another architecture is refused with a clear message
    assert cli.main(["train", "--out", str(out), "--resume", "--model", "stargan", "--steps", "2", "--quiet"]) == 1
    assert "holds a 'funit' model" in capsys.readouterr().err


def test_run_folder_messages_tell_a_run_without_checkpoints_from_a_folder_of_other_files(tmp_path):
    from MicroCTLikeLib.errors import InvalidParameterError
    from MicroCTLikeLib.train.trainer import check_run_dir

    stopped = tmp_path / "stopped"  # a run of ours killed before its first checkpoint
    stopped.mkdir()
    (stopped / "config.json").write_text("{}")
    (stopped / "log.csv").write_text("step\n")
    other = tmp_path / "other"  # somebody's folder
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidParameterError, match="stopped before its first checkpoint.*--force"):
        check_run_dir(stopped, resume=False, force=False)
    with pytest.raises(InvalidParameterError, match="stopped before its first checkpoint.*--force instead of --resume"):
        check_run_dir(stopped, resume=True, force=False)
    with pytest.raises(InvalidParameterError) as refused:
        check_run_dir(other, resume=False, force=False)
    assert "is not a training run folder" in str(refused.value) and "stopped" not in str(refused.value)
    with pytest.raises(InvalidParameterError) as refused:
        check_run_dir(other, resume=True, force=False)
    assert "holds other files, not a training run" in str(refused.value) and "--force" not in str(refused.value)
    check_run_dir(other, resume=False, force=True)  # --force trains into it
    check_run_dir(tmp_path / "new", resume=False, force=False)


def test_cancel_saves_a_resumable_checkpoint(tiny_cohort, tmp_path):
    from MicroCTLikeLib.errors import CancelledError
    from MicroCTLikeLib.train.config import resolve_config
    from MicroCTLikeLib.train.trainer import train

    import threading

    stop = threading.Event()

    def progress(done, total, message):
        if done == 2:  # the user presses Cancel after the second step
            stop.set()

    config = resolve_config(overrides={"model": "funit", "preset": "tiny", "data": str(tiny_cohort), "out": str(tmp_path / "r"), "steps": 10, "cpu_threads": 1})
    with pytest.raises(CancelledError):
        train(config, progress=progress, cancel=stop, say=lambda m: None)
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["step"] == 2  # 2 steps finished before the stop
