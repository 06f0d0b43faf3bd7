"""Checkpoint safety: corrupt, foreign, unsafe, newer-format and other-architecture files."""

from __future__ import annotations

import os

import pytest
import torch

from MicroCTLikeLib import cli
from MicroCTLikeLib.errors import CheckpointError
from MicroCTLikeLib.train import checkpoint as C
from test_train_support import tiny_cohort  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def good(tiny_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    argv = ["train", "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort), "--out", str(out), "--steps", "1", "--quiet", "--set", "cpu_threads=1"]
    assert cli.main(argv) == 0
    return out / "checkpoints" / "last.pt"


def test_good_checkpoint_loads_with_metadata(good):
    payload = C.load_checkpoint(good, expected_model="funit")
    assert payload["format"] == C.FORMAT_NAME and payload["format_version"] == C.FORMAT_VERSION
    assert payload["step"] == 1
    meta = C.checkpoint_metadata(payload)
    assert not set(C.STATE_KEYS) & set(meta)
    assert {"model", "parameters", "normalisation", "target_spacing_mm", "training_data", "config", "code_version"} <= set(meta)


def test_truncated_file(good, tmp_path):
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as caught:
        C.load_checkpoint(bad)
    assert "weights_only" not in str(caught.value)


def test_garbage_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="not a checkpoint: the file is not a PyTorch archive"):
        C.load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="not found"):
        C.load_checkpoint(tmp_path / "nope.pt")


class _Evil:
    def __reduce__(self):  # would run code if loaded without weights_only
        return (os.system, ("echo pwned",))


def test_unsafe_pickle_refused(tmp_path):
    path = tmp_path / "unsafe.pt"
    torch.save({"format": C.FORMAT_NAME, "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="loads checkpoints safely and refused it") as caught:
        C.load_checkpoint(path)
    assert "weights_only" not in str(caught.value) and "False" not in str(caught.value)


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)  # e.g. another project's file
    with pytest.raises(CheckpointError, match="not a MicroCTLike checkpoint"):
        C.load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a MicroCTLike checkpoint"):
        C.load_checkpoint(path)


def test_newer_format_version(good, tmp_path):
    payload = torch.load(good, weights_only=True)
    payload["format_version"] = C.FORMAT_VERSION + 1
    path = tmp_path / "newer.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="newer than this MicroCTLike reads"):
        C.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="newer"):
        C.load_inference_model(path)


def test_other_architecture(good, tmp_path):
    with pytest.raises(CheckpointError, match="holds a 'funit' model, not 'cyclegan'"):
        C.load_inference_model(good, expected_model="cyclegan")
    # same name, other widths: the weights do not fit and the error says so
    payload = torch.load(good, weights_only=True)
    payload["model"]["config"]["gen_nf"] = 8
    path = tmp_path / "wider.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="not those of the 'funit' architecture"):
        C.load_inference_model(path)
    # FUNIT weights relabelled as another architecture (name and config) are refused, not built silently
    payload = torch.load(good, weights_only=True)
    payload["model"]["name"] = "cyclegan"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="labelled 'cyclegan' but its stored model config is 'funit'"):
        C.load_inference_model(path)
    from MicroCTLikeLib.models import registry

    payload["model"]["config"] = registry.model_config("cyclegan", "tiny")
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="not those of the 'cyclegan' architecture"):
        C.load_inference_model(path)


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "ck" / "last.pt"
    C.save_checkpoint({"step": 1, "model": {"name": "funit"}}, target)
    before = target.read_bytes()

    def boom(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        C.save_checkpoint({"step": 2, "model": {"name": "funit"}}, target)
    assert target.read_bytes() == before  # the old checkpoint survives intact
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]  # no temporary left


def test_prune_keeps_newest_step_checkpoints(tmp_path):
    from MicroCTLikeLib.train.trainer import prune_step_checkpoints

    for step in (5, 10, 100, 1000, 20):
        (tmp_path / f"step_{step:07d}.pt").write_bytes(b"x")
    (tmp_path / "last.pt").write_bytes(b"y")
    prune_step_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step_0000100.pt", "step_0001000.pt"]
    prune_step_checkpoints(tmp_path, None)  # null keeps everything
    assert len(list(tmp_path.iterdir())) == 3
