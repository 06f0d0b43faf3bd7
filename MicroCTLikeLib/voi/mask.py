"""Voxels of a cylinder VOI in a volume of any geometry.

A voxel belongs to the VOI when its centre lies inside the cylinder (the usual rule of
voxelised ROIs and what a BoneJ user gets from a cylinder drawn on the stack). The
computation works for oblique direction matrices and anisotropic spacing, and evaluates
only the cylinder's bounding box in index space.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np

from ..errors import InvalidParameterError, VOIError
from ..volume import Volume
from .cylinder import CylinderVOI

#: Slack (in voxels) when deciding whether the cylinder leaves the volume.
_INSIDE_TOL_VOX = 1e-6
_AXIS_NAMES = ("x (i)", "y (j)", "z (k)")
_LPS_SIDES = (("Right", "Left"), ("Anterior", "Posterior"), ("Inferior", "Superior"))


def voi_index_bounds(volume: Volume, voi: CylinderVOI) -> np.ndarray:
    """Exact continuous index bounds of the cylinder, (2, 3) [min; max] in (z, y, x) order."""
    ijk_to_lps = volume.ijk_to_lps()
    lps_to_ijk = np.linalg.inv(ijk_to_lps[:3, :3])
    offset = lps_to_ijk @ ijk_to_lps[:3, 3]
    bounds_ijk = np.empty((2, 3))
    for c in range(3):
        lo, hi = voi.extent_along(lps_to_ijk[c])
        bounds_ijk[:, c] = (lo - offset[c], hi - offset[c])
    return bounds_ijk[:, ::-1].copy()


def _side_name(volume: Volume, axis_xyz: int, high: bool) -> str:
    direction = volume.direction_lps[:, axis_xyz] * (1 if high else -1)
    dominant = int(np.argmax(np.abs(direction)))
    return _LPS_SIDES[dominant][int(direction[dominant] > 0)]


def check_voi_inside(volume: Volume, voi: CylinderVOI) -> None:
    """Raise :class:`VOIError` when the cylinder is not entirely inside the volume.

    "Inside" means inside the volume's voxel extent (index -0.5 .. n-0.5 along each axis).
    The message names the side(s) and by how many millimetres the cylinder sticks out.
    """
    bounds = voi_index_bounds(volume, voi)
    shape = np.array(volume.shape_zyx, dtype=float)
    spacing = np.array(volume.spacing_zyx_mm)
    problems = []
    for a in range(3):  # z, y, x
        axis_xyz = 2 - a
        below = (-0.5 - bounds[0, a]) * spacing[a]
        above = (bounds[1, a] - (shape[a] - 0.5)) * spacing[a]
        if below > _INSIDE_TOL_VOX * spacing[a]:
            problems.append(f"{below:.2f} mm beyond the {_side_name(volume, axis_xyz, False)} edge (low {_AXIS_NAMES[axis_xyz]})")
        if above > _INSIDE_TOL_VOX * spacing[a]:
            problems.append(f"{above:.2f} mm beyond the {_side_name(volume, axis_xyz, True)} edge (high {_AXIS_NAMES[axis_xyz]})")
    if problems:
        label = f"VOI '{voi.name}'" if voi.name else "VOI"
        centre = ", ".join(f"{v:.2f}" for v in voi.centre_lps_mm)
        raise VOIError(
            f"{label} (centre LPS {centre} mm, {voi.diameter_mm:g} x {voi.height_mm:g} mm) is not entirely inside the "
            f"volume: it extends {'; '.join(problems)}. Move the VOI inwards, use a smaller VOI, or use a volume "
            "that covers it."
        )


def voi_slices(volume: Volume, voi: CylinderVOI, *, margin_mm: float = 0.0) -> Tuple[slice, slice, slice]:
    """(z, y, x) slices of the voxels whose centres can lie in the cylinder grown by ``margin_mm``.

    Clipped to the volume; the cylinder itself must be inside (:func:`check_voi_inside`).
    """
    if not np.isfinite(margin_mm) or margin_mm < 0:
        raise InvalidParameterError(f"margin_mm must be >= 0, got {margin_mm}")
    bounds = voi_index_bounds(volume, voi)
    pad = margin_mm / np.array(volume.spacing_zyx_mm)
    lo = np.maximum(np.ceil(bounds[0] - pad - 1e-9).astype(int), 0)
    hi = np.minimum(np.floor(bounds[1] + pad + 1e-9).astype(int) + 1, volume.shape_zyx)
    return tuple(slice(int(a), int(max(a, b))) for a, b in zip(lo, hi))  # type: ignore[return-value]


def crop_volume(volume: Volume, slices: Tuple[slice, slice, slice]) -> Volume:
    """Sub-volume ``volume.array[slices]`` with its geometry (same spacing/direction, new origin)."""
    start = np.array([s.start or 0 for s in slices], dtype=float)
    origin = volume.index_zyx_to_lps(start)
    return dataclasses.replace(volume, array=volume.array[slices], origin_lps_mm=tuple(origin))


def crop_to_voi(volume: Volume, voi: CylinderVOI, *, margin_mm: float = 0.0) -> Volume:
    """The part of ``volume`` around the cylinder plus ``margin_mm`` (clipped to the volume).

    Raises :class:`VOIError` when the cylinder leaves the volume.
    """
    check_voi_inside(volume, voi)
    return crop_volume(volume, voi_slices(volume, voi, margin_mm=margin_mm))


def cylinder_occupancy(volume: Volume, voi: CylinderVOI, *, supersample: int = 4) -> np.ndarray:
    """Fraction of each voxel inside the cylinder, estimated with ``supersample**3`` points.

    Returns float32 (z, y, x) in [0, 1]; its sum times the voxel volume approximates
    ``voi.volume_mm3``. Raises :class:`VOIError` like :func:`cylinder_mask`.
    """
    if int(supersample) != supersample or supersample < 1 or supersample > 16:
        raise InvalidParameterError(f"supersample must be an integer 1..16, got {supersample}")
    supersample = int(supersample)
    check_voi_inside(volume, voi)
    result = np.zeros(volume.shape_zyx, dtype=np.float32)
    # Sub-voxel points reach half a voxel beyond the centres: widen the box by one voxel.
    bounds = voi_index_bounds(volume, voi)
    lo = np.maximum(np.floor(bounds[0] - 0.5).astype(int), 0)
    hi = np.minimum(np.ceil(bounds[1] + 0.5).astype(int) + 1, volume.shape_zyx)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    sub = np.zeros(tuple(b.stop - b.start for b in box), dtype=np.float32)
    for dz in offsets:
        for dy in offsets:
            for dx in offsets:
                sub += _inside_box(volume, voi, box, (dz, dy, dx))
    result[box] = sub / supersample**3
    if not result.any():
        raise VOIError(_empty_message(volume, voi))
    return result


def cylinder_mask(volume: Volume, voi: CylinderVOI, *, supersample: int = 1) -> np.ndarray:
    """Boolean (z, y, x) mask of the voxels of ``volume`` inside the cylinder ``voi``.

    Parameters
    ----------
    volume : Volume
        Any geometry (oblique direction, anisotropic spacing); only its shape and
        geometry are used.
    voi : CylinderVOI
        Cylinder in LPS mm; it must lie entirely inside the volume's extent.
    supersample : int, keyword-only
        1 (default): a voxel is inside when its centre is. n > 1: when at least half of
        its n**3 sub-voxel sample points are (partial-volume-aware majority rule).

    Returns
    -------
    ndarray of bool, shape ``volume.shape_zyx``

    Raises
    ------
    VOIError
        The cylinder sticks out of the volume (the message says where and by how much),
        or no voxel centre falls inside it (VOI smaller than a voxel).
    """
    if supersample != 1:
        return cylinder_occupancy(volume, voi, supersample=supersample) >= 0.5
    check_voi_inside(volume, voi)
    mask = np.zeros(volume.shape_zyx, dtype=bool)
    box = voi_slices(volume, voi)
    if all(s.stop > s.start for s in box):
        mask[box] = _inside_box(volume, voi, box, (0.0, 0.0, 0.0))
    if not mask.any():
        raise VOIError(_empty_message(volume, voi))
    return mask


def _inside_box(volume: Volume, voi: CylinderVOI, box, shift_zyx) -> np.ndarray:
    """Inside test for the voxel centres (shifted by ``shift_zyx`` voxels) of a box.

    Separable: the axial and squared-radial coordinates are sums of per-axis terms, so
    only 1-D arrays are built before the final broadcast.
    """
    m = volume.ijk_to_lps()
    axis = np.asarray(voi.axis_lps)
    base = m[:3, 3] - np.asarray(voi.centre_lps_mm)  # voxel (0,0,0) relative to the centre
    # Per index axis (x, y, z): LPS step vectors and 1-D index ranges in the box.
    ranges = [np.arange(box[2 - c].start, box[2 - c].stop) + shift_zyx[2 - c] for c in range(3)]
    steps = [m[:3, c] for c in range(3)]
    # offset(i,j,k) = base + i*s_x + j*s_y + k*s_z; split the constant into the z term.
    terms = [np.outer(ranges[c], steps[c]) for c in range(3)]
    terms[2] = terms[2] + base
    along = [t @ axis for t in terms]
    # perpendicular part: q = offset - (offset.axis) axis; |q|^2 via per-axis perpendicular vectors
    perp = [t - np.outer(a, axis) for t, a in zip(terms, along)]
    z_part = perp[2][:, None, None, :]
    y_part = perp[1][None, :, None, :]
    x_part = perp[0][None, None, :, :]
    half_h = voi.height_mm / 2 + 1e-9
    r_sq = voi.radius_mm**2 + 1e-9
    out = np.empty((len(ranges[2]), len(ranges[1]), len(ranges[0])), dtype=bool)
    for kk in range(out.shape[0]):  # slice by slice bounds memory for micro-CT sized boxes
        a = along[2][kk] + along[1][:, None] + along[0][None, :]
        q = z_part[kk, 0] + y_part[0] + x_part[0]  # (ny, nx, 3)
        out[kk] = (np.abs(a) <= half_h) & (np.einsum("...i,...i->...", q, q) <= r_sq)
    return out


def _empty_message(volume: Volume, voi: CylinderVOI) -> str:
    return (
        f"VOI '{voi.name or 'cylinder'}' ({voi.diameter_mm:g} x {voi.height_mm:g} mm) contains no voxel centre of a "
        f"volume with spacing {volume.spacing_xyz_mm} mm; use a larger VOI or a finer volume"
    )
