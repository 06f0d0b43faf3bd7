"""Moved to :mod:`MicroCTLikeLib.evaluate.specimen`; this name stays importable."""

from .evaluate.specimen import METRICS, evaluate_case, evaluate_cohort, summarise  # noqa: F401
