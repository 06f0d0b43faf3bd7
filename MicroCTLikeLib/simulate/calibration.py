"""Recalibrating the microstructure fits against our own BoneJ-exact morphometry.

SCIENCE.md gives power-law fits of the perforated-sheet model's Tb.Th and Tb.Sp,
measured with "a BoneJ-like thickness", and asks to recalibrate them with ours. This
module holds the procedure (so the constants in :mod:`.parameters` can be regenerated):

1. :func:`measure_field_sample`: a cube of the model (cancellous bone only, 52 um voxels,
   the same field code, shell width and z-elongation as the simulator) thresholded to an
   exact BV/TV, measured with :mod:`MicroCTLikeLib.morphometry` (Tb.Th on the bone, Tb.Sp
   on the marrow, whole-cube maps);
2. :func:`fit_power_law`: least squares of ln(y) = ln c + a ln(lambda) + b ln(BV/TV) + d p.

The morphometry engine is imported only inside :func:`measure_field_sample`; simulating
never needs it.
"""

from __future__ import annotations

from typing import Dict, Iterable, Tuple

import numpy as np
from scipy import special

from ..errors import InvalidParameterError
from .fields import bandpass_field, quantile_threshold
from .parameters import MICROCT_VOXEL_MM


def measure_field_sample(
    wavelength_mm: float,
    bv_tv: float,
    hole_fraction: float,
    seed: int,
    *,
    size_voxels: int = 176,
    z_elongation: float = 0.82,
    shell_relative_width: float = 0.15,
) -> Dict[str, float]:
    """Simulate a cube of the microstructure model and measure it (BoneJ-exact).

    Returns a dict with the inputs, the achieved ``bv_tv``, ``tb_th_mm`` and ``tb_sp_mm``
    (means of the local thickness maps at 0.052 mm).
    """
    from ..morphometry.local_thickness import local_thickness_map, thickness_stats

    voxel = MICROCT_VOXEL_MM
    shape = (size_voxels,) * 3
    rng = np.random.default_rng(seed)
    kwargs = dict(wavelength_mm=wavelength_mm, z_elongation=z_elongation, shell_relative_width=shell_relative_width)
    g = bandpass_field(shape, voxel, rng, **kwargs)
    h = bandpass_field(shape, voxel, rng, **kwargs)
    keep = h > (special.ndtri(hole_fraction) if hole_fraction > 0 else -np.inf)
    t = quantile_threshold(lambda: iter([np.abs(g[keep])]), int(round(bv_tv * g.size)))
    bone = (np.abs(g) < t) & keep
    tb_th = thickness_stats(local_thickness_map(bone, pixel_width_mm=voxel)).mean
    tb_sp = thickness_stats(local_thickness_map(bone, pixel_width_mm=voxel, inverse=True)).mean
    return {
        "wavelength_mm": float(wavelength_mm),
        "hole_fraction": float(hole_fraction),
        "bv_tv": float(bone.mean()),
        "tb_th_mm": float(tb_th),
        "tb_sp_mm": float(tb_sp),
    }


def fit_power_law(rows: Iterable[Dict[str, float]], key: str) -> Tuple[Tuple[float, float, float, float], float]:
    """Fit ``rows[key] = c * lambda^a * BVTV^b * exp(d * p)`` by log-linear least squares.

    Returns ``((c, a, b, d), r_squared)`` (R^2 of the log fit).
    """
    rows = list(rows)
    if len(rows) < 5:
        raise InvalidParameterError(f"need at least 5 samples to fit 4 coefficients, got {len(rows)}")
    design = np.array([[1.0, np.log(r["wavelength_mm"]), np.log(r["bv_tv"]), r["hole_fraction"]] for r in rows])
    target = np.log([r[key] for r in rows])
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ coef
    r_squared = 1.0 - float(residual @ residual) / float(((target - target.mean()) ** 2).sum())
    return (float(np.exp(coef[0])), float(coef[1]), float(coef[2]), float(coef[3])), r_squared
