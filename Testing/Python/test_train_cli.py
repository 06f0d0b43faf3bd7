"""The trainer as users run it: config resolution, `microctlike train/info`, train.py, torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from MicroCTLikeLib.errors import InvalidParameterError
from MicroCTLikeLib.models import registry
from MicroCTLikeLib.train.config import DEFAULTS, parse_set_option, resolve_config
from test_train_support import tiny_cohort  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]


def _run(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny nets: one thread is fastest on a busy machine
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, env=env)


# ------------------------------------------------------------------ config (in process)
def test_config_precedence_file_then_command_line(tmp_path):
    file = tmp_path / "opts.yaml"
    file.write_text("seed: 11\ncrop_px: 64\nmodel_overrides: {lr_gen: 0.0003}\n")
    config = resolve_config(file=file, overrides={"model": "funit", "preset": "tiny", "crop_px": 48, "seed": None})
    assert config["seed"] == 11 and config["crop_px"] == 48  # CLI beats file; None = not given
    assert config["model_config"]["lr_gen"] == 0.0003 and config["model_config"]["gen_nf"] == 4
    assert config["batch_size"] == registry.model_config("funit", "tiny")["suggested_batch_size"]
    json.dumps(config)  # JSON-serialisable
    assert set(DEFAULTS) | {"model_config"} == set(config)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"crop_px": 40}, "multiple of 16"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"mdct_window_hu": [100, -100]}, "low < high"),
        ({"target_spacing_mm": -0.1}, "target_spacing_mm"),
        ({"model": "unet"}, "unknown model 'unet'"),
        ({"amp": "fp8"}, "amp must be one of"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(InvalidParameterError, match=message):
        resolve_config(overrides={"preset": "tiny", **overrides})


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"sed": 1}')
    with pytest.raises(InvalidParameterError, match="unknown option 'sed'"):
        resolve_config(file=bad)
    bad.write_text("{not json")
    with pytest.raises(InvalidParameterError, match="cannot parse"):
        resolve_config(file=bad)


def test_set_option_parsing():
    assert parse_set_option("mdct_window_hu=[-100, 1500]") == ("mdct_window_hu", [-100, 1500])
    assert parse_set_option("model_overrides.lr_gen=2e-4") == ("model_overrides", {"lr_gen": 2e-4})
    with pytest.raises(InvalidParameterError, match="KEY=VALUE"):
        parse_set_option("seed")


# ------------------------------------------------------------------ command lines (subprocess)
def test_dry_run_prints_resolved_config_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = _run("-m", "MicroCTLikeLib", "train", "--model", "stargan", "--preset", "tiny", "--out", str(out),
                  "--batch-size", "3", "--set", "target_spacing_mm=0.052", "--dry-run")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["model"] == "stargan" and config["batch_size"] == 3 and config["target_spacing_mm"] == 0.052
    assert config["crop_px"] == 32 and config["model_config"]["n_critic"] == 5
    assert not out.exists()


def test_usage_errors_exit_codes(tmp_path):
    result = _run("-m", "MicroCTLikeLib", "train", "--out", str(tmp_path / "r"), "--crop", "40", "--dry-run")
    assert result.returncode == 2 and "multiple of 16" in result.stderr and "Traceback" not in result.stderr
    result = _run("-m", "MicroCTLikeLib", "train", "--model", "resnet", "--out", str(tmp_path / "r"))
    assert result.returncode == 2  # argparse usage error


def test_train_py_with_leading_double_dash_then_info(tiny_cohort, tmp_path):
    """The Slicer form `--python-script train.py -- ARGS`, then `microctlike info` on the result."""
    out = tmp_path / "run"
    result = _run("train.py", "--", "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort),
                  "--out", str(out), "--steps", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    checkpoint = out / "checkpoints" / "last.pt"
    assert checkpoint.is_file()
    info = _run("-m", "MicroCTLikeLib", "info", str(checkpoint), "--json")
    assert info.returncode == 0, info.stderr
    meta = json.loads(info.stdout)
    fresh = registry.build_model(registry.model_config("funit", "tiny")).parameter_counts()
    assert meta["parameters"]["generator"] == fresh["generator"] > 0
    assert meta["parameters"]["discriminator"] == fresh["discriminator"] > 0
    assert meta["step"] == 2 and meta["model"]["name"] == "funit"
    assert meta["training_data"]["case_ids"] == ["case000", "case001"]
    assert meta["normalisation"]["target_spacing_mm"] == pytest.approx(0.104)
    text = _run("-m", "MicroCTLikeLib", "info", str(checkpoint))
    assert text.returncode == 0 and "parameters.generator" in text.stdout
    # the train.py error path: a clear message and exit 1 (no Slicer left hanging)
    again = _run("train.py", "--", "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort), "--out", str(out))
    assert again.returncode == 1 and "holds a run with checkpoints" in again.stderr and "Traceback" not in again.stderr


def test_info_for_a_model_preset_and_bad_files(tmp_path):
    result = _run("-m", "MicroCTLikeLib", "info", "--model", "cyclegan", "--preset", "tiny", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["parameters"] == registry.build_model(registry.model_config("cyclegan", "tiny")).parameter_counts()
    assert info["model"]["paired"] is False and info["model"]["config"]["name"] == "cyclegan"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    bad = _run("-m", "MicroCTLikeLib", "info", str(junk))
    assert bad.returncode == 1 and "not a checkpoint" in bad.stderr
    neither = _run("-m", "MicroCTLikeLib", "info")
    assert neither.returncode == 1 and "either a CHECKPOINT" in neither.stderr


def test_train_py_import_does_nothing_and_main_returns_codes(tmp_path, capsys):
    """Importing train.py starts nothing; main() returns exit codes instead of exiting."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not (tmp_path / "r").exists()
    assert module.main(["--", "--out", str(tmp_path / "r"), "--crop", "40", "--dry-run"]) == 2  # parse-time range
    assert "multiple of 16" in capsys.readouterr().err
    assert module.main(["--out", str(tmp_path / "r"), "--preset", "tiny", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "tiny"
    assert module.main(["--model", "nope", "--out", "x"]) == 2  # usage error, no SystemExit


def test_cli_help_does_not_import_torch():
    code = "import sys, MicroCTLikeLib.cli as c; c.build_parser(); print('torch' in sys.modules)"
    result = _run("-c", code)
    assert result.stdout.strip() == "False", result.stderr


def test_torchrun_two_processes_on_cpu(tiny_cohort, tmp_path):
    """DistributedDataParallel over gloo: two ranks, rank 0 writes; losses are averaged over ranks."""
    out = tmp_path / "ddp"
    result = _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train.py",
                  "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort), "--out", str(out),
                  "--steps", "2", "--set", "log_every=1", "--quiet", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stderr
    from MicroCTLikeLib.train.checkpoint import load_checkpoint
    from MicroCTLikeLib.train.runlog import read_log

    payload = load_checkpoint(out / "checkpoints" / "last.pt")
    assert payload["step"] == 2 and payload["sampler"]["batches_drawn"] == 2
    rows = read_log(out / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2]
    # the interval is a tenth of the run (at least 1): step_0000001.pt, step_0000002.pt + last.pt
    assert len(list((out / "checkpoints").glob("*.pt"))) == 3
