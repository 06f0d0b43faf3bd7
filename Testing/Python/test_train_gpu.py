"""CUDA-only trainer checks (bf16 autocast, channels_last); skipped with a reason without a GPU."""

from __future__ import annotations

import math

import pytest
import torch

from MicroCTLikeLib import cli
from MicroCTLikeLib.train.checkpoint import load_inference_model
from MicroCTLikeLib.train.runlog import read_log
from test_train_support import tiny_cohort  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]


@pytest.mark.parametrize("amp", ["bf16", "fp16", "off"])
@pytest.mark.parametrize("model", ["funit", "stargan"])
def test_cuda_training_with_autocast(tiny_cohort, tmp_path, model, amp):
    out = tmp_path / "run"
    argv = ["train", "--model", model, "--preset", "tiny", "--data", str(tiny_cohort), "--out", str(out),
            "--steps", "6", "--device", "cuda", "--quiet", "--set", f"amp={amp}", "--set", "log_every=1"]
    assert cli.main(argv) == 0
    rows = read_log(out / "log.csv")
    assert len(rows) == 6 and all(math.isfinite(v) for r in rows for v in r.values())
    generator, meta = load_inference_model(out / "checkpoints" / "last.pt", "cuda")
    x = torch.rand(1, 1, 40, 40, device="cuda") * 2 - 1
    with torch.no_grad():
        y = generator(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert meta["config"]["amp"] == amp
