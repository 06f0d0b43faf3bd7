"""Measure a volume inside cylindrical VOIs: the glue between geometry and morphometry.

One function per question, shared by the ``measure`` command, the demo, the simulator's
truth metrics and the Slicer module, so every front-end measures the same way:

* the 8-bit display range is the whole stack's (ImageJ opens the stack, then converts),
  also when only a crop around the VOI is measured;
* the maps are computed on the VOI's bounding box plus the policy's margin (and a little
  more, so the policy sees its whole box), the statistics inside the cylinder.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from .morphometry import DEFAULT_MARGIN_MM, MorphometryResult, measure_trabecular
from .morphometry.conversion import default_display_range
from .volume import Volume
from .voi import CylinderVOI, crop_to_voi, cylinder_mask

RESULT_KEYS = ("bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_th_max_mm", "tb_sp_mm", "tb_sp_sd_mm", "tb_sp_max_mm")


def crop_margin_mm(volume: Volume, margin_mm: float) -> float:
    """Margin of the crop around a VOI: the policy's margin plus two voxels."""
    return float(margin_mm) + 2 * max(volume.spacing_xyz_mm)


def measure_in_voi(volume: Volume, voi: CylinderVOI, *, threshold="isodata", tb_sp_policy: str = "margin",
                   margin_mm: float = DEFAULT_MARGIN_MM, display_range: Optional[Sequence[float]] = None,
                   return_maps: bool = False, progress=None, cancel=None) -> MorphometryResult:
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

    Returns
    -------
    MorphometryResult
        Maps (when asked) are on the crop returned by :func:`voi_crop`.
    """
    if display_range is None:
        display_range = default_display_range(volume.array)
    crop = voi_crop(volume, voi, margin_mm=margin_mm)
    mask = cylinder_mask(crop, voi)
    return measure_trabecular(crop.array, spacing_xyz_mm=crop.spacing_xyz_mm, voi_mask=mask, threshold=threshold,
                              tb_sp_policy=tb_sp_policy, margin_mm=margin_mm, display_range=display_range,
                              return_maps=return_maps, progress=progress, cancel=cancel)


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
