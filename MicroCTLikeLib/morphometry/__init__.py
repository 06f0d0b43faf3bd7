"""Trabecular bone morphometry, BoneJ-exact: ImageJ 8-bit conversion and auto-thresholds,
local thickness maps (Tb.Th, Tb.Sp) and VOI metrics (BV/TV, Tb.Th, Tb.Sp).

The numba kernels load lazily on the first thickness computation, so importing this
package stays cheap.
"""

from .conversion import to_8bit
from .local_thickness import ThicknessStats, local_thickness_map, thickness_stats
from .metrics import DEFAULT_MARGIN_MM, POLICIES, MorphometryResult, measure_binary, measure_trabecular
from .thresholds import METHODS, auto_threshold, histogram_8bit

__all__ = [
    "DEFAULT_MARGIN_MM", "METHODS", "POLICIES", "MorphometryResult", "ThicknessStats", "auto_threshold",
    "histogram_8bit", "local_thickness_map", "measure_binary", "measure_trabecular", "thickness_stats",
    "to_8bit",
]
