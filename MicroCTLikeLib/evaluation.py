"""Moved to :mod:`MicroCTLikeLib.evaluate.specimen`; this name stays importable."""

from .evaluate.specimen import (  # noqa: F401
    MEASUREMENT_RECIPES, METRICS, REFERENCE_LABELS, agreement, evaluate_case, evaluate_cohort, icc_single, summarise,
)
