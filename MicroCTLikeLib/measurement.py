"""Measure a volume inside cylindrical VOIs: the glue between geometry and morphometry.

One function per question, shared by the ``measure`` command, the demo, the simulator's
truth metrics and the Slicer module, so every front-end measures the same way:

* the 8-bit display range is the whole stack's (ImageJ opens the stack, then converts),
  also when only a crop around the VOI is measured;
* the maps are computed on the VOI's bounding box plus the policy's margin (and a little
  more, so the policy sees its whole box), the statistics inside the cylinder.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .errors import InvalidParameterError
from .morphometry import DEFAULT_MARGIN_MM, MorphometryResult, measure_trabecular
from .morphometry.conversion import default_display_range
from .volume import Volume
from .voi import CylinderVOI, crop_to_voi, cylinder_mask

#: voxel size (mm) of the common measurement grid: the study's micro-CT voxel (Siemens Inveon)
COMMON_GRID_VOXEL_MM = 0.052

RESULT_KEYS = ("bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm")


def crop_margin_mm(volume: Volume, margin_mm: float) -> float:
    """Margin of the crop around a VOI: the policy's margin plus two voxels."""
    return float(margin_mm) + 2 * max(volume.spacing_xyz_mm)


def measure_in_voi(volume: Volume, voi: CylinderVOI, *, threshold="isodata", tb_sp_policy: str = "margin",
                   margin_mm: float = DEFAULT_MARGIN_MM, display_range: Optional[Sequence[float]] = None,
                   voxel_mm: Optional[float] = None, return_maps: bool = False, progress=None,
                   cancel=None) -> MorphometryResult:
    """BV/TV, Tb.Th and Tb.Sp of ``volume`` inside the cylinder ``voi`` (BoneJ-exact).

    Parameters
    ----------
    volume : Volume
        Grey (HU, micro-CT grey) or binary (0/255, bool) volume, any geometry.
    voi : CylinderVOI
        Must lie inside the volume (:class:`~MicroCTLikeLib.errors.VOIError` otherwise).
    threshold, tb_sp_policy, margin_mm, return_maps, progress, cancel
        As :func:`MicroCTLikeLib.morphometry.measure_trabecular`.
    display_range : (min, max), optional
        8-bit window; default the whole volume's min and max (what ImageJ uses).
    voxel_mm : float, optional
        Measure on a common isotropic grid: the crop is resampled (trilinear, grey volumes
        only) to cubic voxels of this size, aligned with the volume's axes, before the 8-bit
        conversion and the threshold. None (default) measures the voxels as they are, as
        BoneJ does. Use it to compare volumes of different voxel sizes under one recipe
        (see :data:`COMMON_GRID_VOXEL_MM`): BoneJ calibrates by the pixel width only, so a
        0.195 x 0.195 x 0.1 mm MDCT or a 0.104 mm micro-CT-like volume is otherwise measured
        in other units than a 0.052 mm micro-CT, and a trabecula thinner than two voxels
        cannot read below two voxels.

    Returns
    -------
    MorphometryResult
        Maps (when asked) are on the crop returned by :func:`voi_crop` (resampled when
        ``voxel_mm`` is given).
    """
    if display_range is None:
        display_range = default_display_range(volume.array)
    crop = voi_crop(volume, voi, margin_mm=margin_mm)
    if voxel_mm is not None:
        crop = resample_isotropic(crop, voxel_mm)
    mask = cylinder_mask(crop, voi)
    return measure_trabecular(crop.array, spacing_xyz_mm=crop.spacing_xyz_mm, voi_mask=mask, threshold=threshold,
                              tb_sp_policy=tb_sp_policy, margin_mm=margin_mm, display_range=display_range,
                              return_maps=return_maps, progress=progress, cancel=cancel)


def resample_isotropic(volume: Volume, voxel_mm: float) -> Volume:
    """``volume`` resampled (trilinear) to cubic voxels of ``voxel_mm`` over the same extent.

    The new grid keeps the direction and the outer edges of the field of view (first voxel
    centre half a new voxel inside the old outer edge). Binary (bool / 0-255 uint8) volumes
    are refused: interpolating a mask would invent partial volumes. A volume that already
    has that spacing is returned as it is.
    """
    import SimpleITK as sitk

    voxel_mm = float(voxel_mm)
    if not (math.isfinite(voxel_mm) and voxel_mm > 0):
        raise InvalidParameterError(f"voxel_mm must be a positive number of mm, got {voxel_mm!r}")
    if np.allclose(volume.spacing_xyz_mm, voxel_mm, rtol=1e-6, atol=0):
        return volume
    if volume.array.dtype == bool or (volume.array.dtype == np.uint8 and set(np.unique(volume.array)) <= {0, 255}):
        raise InvalidParameterError("a binary volume cannot be resampled for measurement; measure it on its own grid")
    spacing = np.asarray(volume.spacing_xyz_mm, dtype=float)
    extent = spacing * np.asarray(volume.shape_zyx[::-1], dtype=float)
    size = np.maximum(1, np.round(extent / voxel_mm)).astype(int)
    # outer edge kept: first centre at (old edge) + voxel / 2, along each axis of the direction
    shift = (voxel_mm - spacing) / 2.0
    origin = np.asarray(volume.origin_lps_mm) + volume.direction_lps @ shift
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(v) for v in size])
    resampler.SetOutputSpacing((voxel_mm,) * 3)
    resampler.SetOutputOrigin(tuple(float(v) for v in origin))
    resampler.SetOutputDirection(tuple(volume.direction_lps.ravel()))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(float(volume.array.min()))
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    image = resampler.Execute(volume.to_sitk())
    return Volume.from_sitk(image, metadata=dict(volume.metadata), source="resampled for measurement")


def voi_crop(volume: Volume, voi: CylinderVOI, *, margin_mm: float = DEFAULT_MARGIN_MM) -> Volume:
    """The crop of ``volume`` that :func:`measure_in_voi` measures (for showing its maps)."""
    return crop_to_voi(volume, voi, margin_mm=crop_margin_mm(volume, margin_mm))


def measure_vois(volume: Volume, vois: Iterable[CylinderVOI], **options: Any) -> List[Dict[str, Any]]:
    """:func:`measure_in_voi` for each VOI; one JSON-ready dict per VOI with its geometry."""
    display_range = options.pop("display_range", None) or default_display_range(volume.array)
    rows = []
    for voi in vois:
        result = measure_in_voi(volume, voi, display_range=display_range, **options)
        rows.append({"voi_name": voi.name, **result.as_dict(), "voi": voi.to_dict()})
    return rows
