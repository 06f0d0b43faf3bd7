"""Moved to :mod:`MicroCTLikeLib.evaluate.demo`; this name stays importable."""

from .evaluate.demo import DEMO_SEED, run_demo  # noqa: F401
