"""Moved to :mod:`MicroCTLikeLib.evaluate.similarity`; this name stays importable."""

from .evaluate.similarity import sample_on_grid, ssim_8bit, window_to_8bit  # noqa: F401
