"""Synthetic spine cohort: truth microstructure, micro-CT and MDCT of lumbar vertebrae.

No real specimens ship with MicroCTLike, so development, tests and demos run on simulated
ones (SCIENCE.md section 5): a perforated-sheet random-field microstructure inside an
elliptic vertebral body, imaged by a micro-CT model (52 um) and an MDCT forward model
(0.195 x 0.195 x 0.1 mm). Everything is bit-reproducible from a seed.

Public API: :func:`simulate_specimen`, :class:`Specimen`, :func:`write_cohort`,
:data:`PRESETS`, :func:`truth_metrics_hook`, :func:`standard_voi_geometry`.
"""

from .cohort import case_seed, suggest_split, write_cohort, write_specimen
from .parameters import CALIBRATED_FITS, PRESETS, SCIENCE_FITS, Preset, draw_specimen_parameters, solve_field_parameters
from .specimen import ORIENTATION, Specimen, simulate_specimen
from .truth_metrics import standard_voi_geometry, truth_metrics_hook

__all__ = [
    "CALIBRATED_FITS",
    "SCIENCE_FITS",
    "ORIENTATION",
    "PRESETS",
    "Preset",
    "Specimen",
    "case_seed",
    "draw_specimen_parameters",
    "simulate_specimen",
    "solve_field_parameters",
    "standard_voi_geometry",
    "suggest_split",
    "truth_metrics_hook",
    "write_cohort",
    "write_specimen",
]
