"""Evaluation: per-specimen generation and measurement, similarity (SSIM, FID), pairing,
statistics, cohort tables, the report and its figures, and the end-to-end demo.

Modules:

* :mod:`.specimen` — one specimen: standard VOIs on the MDCT, generation, BoneJ-exact
  metrics of every volume, SSIM against the micro-CT;
* :mod:`.similarity` — SSIM (Wang settings) on 8-bit images, sampling on a common grid;
* :mod:`.report` — figures and JSON / Markdown / HTML writers;
* :mod:`.demo` — the end-to-end demo on a held-out simulated vertebra.
"""

from .similarity import sample_on_grid, ssim_8bit, window_to_8bit
from .specimen import METRICS, evaluate_case, evaluate_cohort, summarise

__all__ = ["METRICS", "evaluate_case", "evaluate_cohort", "summarise", "sample_on_grid", "ssim_8bit",
           "window_to_8bit"]
