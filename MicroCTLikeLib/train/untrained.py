"""An untrained generator checkpoint of a given width, for smoke tests of the generation path.

The Slicer self-test and the MRML tests drive the real generation worker end to end; they
need a checkpoint that loads like a trained one but costs nothing to make. Its output is
not a micro-CT-like image (the weights are random, seeded), only right in shape, geometry
and file format. torch is imported here.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import save_checkpoint
from .config import DEFAULTS


def write_untrained_checkpoint(path, *, model: str = "funit", preset: str = "tiny", seed: int = 0) -> Path:
    """Save an inference checkpoint with seeded random weights (``untrained: true`` in its metadata).

    Normalisation (target spacing, windows) is the training defaults'; the micro-CT window is
    [0, 255]. Returns the path.
    """
    import torch

    from ..models import build_inference_generator, model_config

    config = model_config(model, preset)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(seed))
        generator = build_inference_generator(config)
        if hasattr(generator, "set_class_code"):  # FUNIT: a class code from seeded noise "micro-CT" shots
            generator.set_class_code(torch.rand(2, 1, 32, 32) * 2 - 1)
    finally:
        torch.random.set_rng_state(state)
    return save_checkpoint({
        "model": {"name": model, "config": config},
        "normalisation": {
            "mdct_window_hu": list(DEFAULTS["mdct_window_hu"]),
            "microct_window": [0.0, 255.0],
            "target_spacing_mm": float(DEFAULTS["target_spacing_mm"]),
        },
        "target_spacing_mm": float(DEFAULTS["target_spacing_mm"]),
        "untrained": True,
        "seed": int(seed),
        "inference_only": True,
        "inference_generator": generator.state_dict(),
    }, path)
