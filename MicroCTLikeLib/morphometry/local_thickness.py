"""BoneJ-exact local thickness maps (Tb.Th, Tb.Sp) and their ImageJ statistics.

Reproduces BoneJ2's ``ThicknessWrapper`` (Fiji LocalThickness: EDT, distance ridge, ball
painting, clean-up, masking, calibration by the pixel width) voxel for voxel, float32
values and NaN positions included. See SCIENCE.md section 2 and Testing/Data/bonej/README.md.

References
----------
Hildebrand T, Rüegsegger P. A new method for the model-independent assessment of thickness
in three-dimensional images. J Microsc 1997;185:67-75. doi:10.1046/j.1365-2818.1997.1340694.x
Dougherty R, Kunzelmann KH. Computing local thickness of 3D structures with ImageJ.
Microsc Microanal 2007;13(S02):1678-1679. doi:10.1017/S1431927607074430
Domander R, Felder AA, Doube M. BoneJ2 - refactoring established research software.
Wellcome Open Res 2021;6:37. doi:10.12688/wellcomeopenres.16619.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameterError, InvalidVolumeError

#: Threads used by the EDT (edt) and the numba kernels; the CI machine has 2 cores.
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class ThicknessStats:
    """ImageJ ``StackStatistics`` of a calibrated thickness map (non-NaN voxels).

    Attributes
    ----------
    mean, sd, max : float
        Mean, *sample* standard deviation (n - 1) and maximum, in the map's unit (mm when
        the pixel width was given in mm). NaN when ``n == 0``.
    n : int
        Number of measured voxels.
    """

    mean: float
    sd: float
    max: float
    n: int


def phase_of_binary(binary: np.ndarray, *, inverse: bool) -> np.ndarray:
    """Measured phase of a 0/255 (or bool) volume: >= 128 (bone), or < 128 if ``inverse``."""
    if binary.dtype == bool:
        bone = binary
    else:
        bone = binary >= 128
    return ~bone if inverse else bone


def _validate_binary(binary) -> np.ndarray:
    array = np.asarray(binary)
    if array.ndim != 3:
        raise InvalidVolumeError(f"expected a 3-D (z, y, x) volume, got an array of shape {array.shape}")
    if array.size == 0:
        raise InvalidVolumeError("the volume is empty (a dimension has size 0)")
    if array.dtype != bool and not np.issubdtype(array.dtype, np.integer):
        raise InvalidVolumeError(
            f"a binary volume must be bool or integer 0/255, got dtype {array.dtype}; "
            "threshold grey images with measure_trabecular() first"
        )
    return array


def _validate_pixel_width(pixel_width_mm) -> float:
    width = float(pixel_width_mm)
    if not math.isfinite(width) or width <= 0:
        raise InvalidParameterError(f"pixel_width_mm must be a finite positive number, got {pixel_width_mm!r}")
    return width


def local_thickness_map(binary, *, pixel_width_mm: float = 1.0, inverse: bool = False,
                        threads: int = DEFAULT_THREADS) -> np.ndarray:
    """BoneJ "Thickness" map of a binary volume (fast exact implementation).

    Parameters
    ----------
    binary : (z, y, x) ndarray, bool or integer
        Bone = True or >= 128 (a 0/255 stack as BoneJ reads it).
    pixel_width_mm : float, keyword-only
        Calibration: BoneJ multiplies by the pixel *width* (x spacing) only.
    inverse : bool, keyword-only
        False: Tb.Th (phase = bone). True: Tb.Sp (phase = marrow, < 128, of the whole stack).
    threads : int, keyword-only
        Threads for the EDT and the kernels.

    Returns
    -------
    (z, y, x) ndarray of float32
        Local thickness in the unit of ``pixel_width_mm`` at every phase voxel, NaN elsewhere.
        Identical to the map BoneJ2 returns (mask thickness maps on, calibrated pixels).

    Raises
    ------
    InvalidVolumeError
        Not 3-D, empty, not binary, or the phase fills the whole image (no distance is finite).

    Examples
    --------
    >>> plate = np.zeros((12, 8, 8), np.uint8); plate[4:7] = 255   # 3 slices thick
    >>> float(np.nanmax(local_thickness_map(plate)))                 # BoneJ: 2 * ceil(3 / 2)
    4.0
    """
    array = _validate_binary(binary)
    width = _validate_pixel_width(pixel_width_mm)
    phase = np.ascontiguousarray(phase_of_binary(array, inverse=inverse))
    return _local_thickness_fast(phase, width, threads=int(threads))


def _local_thickness_fast(phase: np.ndarray, pixel_width_mm: float, *, threads: int) -> np.ndarray:
    import edt
    import numba

    from . import _lt_kernels as k

    if not phase.any():
        return np.full(phase.shape, np.nan, dtype=np.float32)
    if phase.all():
        raise InvalidVolumeError(
            "the measured phase fills the whole image, so no distance to the other phase exists; "
            "check the threshold or the VOI"
        )
    previous_threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        # edt is ~2x faster on uint8 than on bool input
        edtsq = edt.edtsq(phase.view(np.uint8), black_border=False, parallel=max(1, threads))
        r_sq = k.squared_radius_from_edtsq(edtsq, phase)
        del edtsq
        r_sq_max = int(r_sq.max())
        templates = k.ridge_templates(r_sq_max)
        coords, radii, starts = k.ridge_points(r_sq, templates)
        isqrt = k.integer_sqrt_table(r_sq_max)
        n_chunks = max(1, min(phase.shape[0], 4 * threads))
        s = k.paint_balls(r_sq, coords, radii, starts, isqrt, n_chunks)
        del r_sq, coords, radii
        surface = k.surface_flags(s)
        lt_of_s = thickness_of_squared_radius(int(s.max()))
        return k.cleaned_calibrated_map(s, surface, phase, lt_of_s, k.CLEANUP_OFFSETS_ZYX,
                                        np.float32(pixel_width_mm))
    finally:
        numba.set_num_threads(previous_threads)


def thickness_of_squared_radius(r_sq_max: int) -> np.ndarray:
    """``(float)(2 * sqrt(s))`` for s = 0..r_sq_max (float32), as Local_Thickness writes it."""
    return (2.0 * np.sqrt(np.arange(r_sq_max + 1, dtype=np.float64))).astype(np.float32)


def thickness_stats(thickness_map, *, mask=None) -> ThicknessStats:
    """ImageJ ``StackStatistics`` of a thickness map over its non-NaN voxels.

    Parameters
    ----------
    thickness_map : ndarray of float32
        A map from :func:`local_thickness_map` (NaN = no value).
    mask : ndarray of bool, optional, keyword-only
        Restrict the statistics to these voxels (e.g. a cylinder VOI).

    Returns
    -------
    ThicknessStats
        mean (sum in double / n), sample SD ``sqrt((n*S2 - S1^2) / n / (n - 1))`` (0 when
        that is not positive, as ImageJ), max and n.
    """
    from ._lt_kernels import nan_statistics

    values = np.asarray(thickness_map, dtype=np.float32)
    if mask is not None:
        values = values[np.asarray(mask, dtype=bool)]
    n, total, total_sq, vmax = nan_statistics(np.ascontiguousarray(values))
    return _stats_from_sums(int(n), float(total), float(total_sq), float(vmax))


def _stats_from_sums(n: int, total: float, total_sq: float, vmax: float) -> ThicknessStats:
    if n == 0:
        return ThicknessStats(mean=math.nan, sd=math.nan, max=math.nan, n=0)
    mean = total / n
    sd = 0.0
    if n > 1:
        var = (n * total_sq - total * total) / n
        sd = math.sqrt(var / (n - 1)) if var > 0 else 0.0
    return ThicknessStats(mean=mean, sd=sd, max=vmax, n=n)
