"""Standardized VOI placement (the study's Figure 5), found automatically.

Rule (SCIENCE.md section 4): on the mid-height axial cross-section of the vertebral body,
line A is the body's antero-posterior midline; line B crosses it 5 mm inside the anterior
cortex; the 15 mm cylinder is tangent to B, so its centre lies 12.5 mm posterior of the
anterior edge on line A. Two 5 mm high cylinders, one spanning mid-height to +offset and
one mid-height to -offset, with the axis along the body's superior-inferior axis.

How the body is found (all in LPS mm, so any spacing or direction matrix works):

1. Block-average the volume to about 0.25 mm, threshold it (Otsu, or a value you give),
   max-pool to about 0.5 mm, close small gaps, keep the largest connected component and
   fill its holes: the coarse body mask.
2. Axis: the patient superior axis (LPS +z) unless ``axis_lps`` says otherwise ("image"
   takes the volume's k axis). We do not estimate it from the body's shape: a vertebral
   body is about as high as it is deep, so its principal axes do not identify it.
3. Mid-height: the middle of the body's extent along the axis. When the body is cut by
   the volume's ends (a block around the VOIs) the middle of the volume is used instead.
4. Cross-section: the coarse mask within 1 mm of mid-height.
   * Whole section (it does not touch the volume's sides): the AP direction is the
     principal axis of the section closest to the patient's posterior direction, and
     line A passes through the section's centroid (the centre of its short axis).
   * Cut section (a block): the AP direction is the patient's posterior direction and
     line A passes through the vertex of the anterior outline (a parabola fitted to the
     anterior cortex edges measured at several lateral positions). This assumes the body
     is not rotated about the axis within the block.
5. Anterior edge: along line A, at full resolution, the outermost crossing of the level
   half-way between the surrounding tissue and the cortex peak of a profile averaged over
   a small band (outer surface of the anterior cortex).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InvalidParameterError, VOIError
from ..volume import Volume, validate_voxels
from .cylinder import STANDARD_DIAMETER_MM, STANDARD_HEIGHT_MM, CylinderVOI
from .mask import check_voi_inside

#: Working resolutions of the body detection (mm).
_FINE_MM = 0.25
_COARSE_MM = 0.5
#: Patient directions in LPS.
_POSTERIOR = np.array([0.0, 1.0, 0.0])
_SUPERIOR = np.array([0.0, 0.0, 1.0])

AxisSpec = Union[str, Sequence[float], None]


@dataclasses.dataclass(frozen=True)
class BodyDetection:
    """What was found of the vertebral body (LPS mm; directions are unit vectors).

    ``anterior_edge_lps_mm`` is the outer surface of the anterior cortex on line A at
    mid-height; ``centre_lps_mm`` the section centre on line A at mid-height (for a cut
    section, the middle of the part inside the volume); ``mid_height_lps_mm`` a point of the
    mid-height plane; ``width_mm``/``depth_mm`` the section's extent across/along line A
    (of the part inside the volume when ``section_cut``).
    """

    anterior_edge_lps_mm: Tuple[float, float, float]
    centre_lps_mm: Tuple[float, float, float]
    ap_direction_lps: Tuple[float, float, float]
    lr_direction_lps: Tuple[float, float, float]
    axis_lps: Tuple[float, float, float]
    mid_height_lps_mm: Tuple[float, float, float]
    width_mm: float
    depth_mm: float
    height_mm: float
    threshold: float
    section_cut: bool
    height_cut: bool
    notes: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = [round(float(v), 6) if not isinstance(v, str) else v for v in value]
            elif isinstance(value, float):
                data[key] = round(value, 6)
        return data


@dataclasses.dataclass(frozen=True)
class StandardPlacement:
    """The standard VOIs (superior first) and the body detection they came from."""

    vois: Tuple[CylinderVOI, ...]
    body: BodyDetection
    parameters: Dict[str, float]

    def to_dict(self) -> Dict[str, Any]:
        return {"vois": [v.to_dict() for v in self.vois], "body": self.body.to_dict(), "parameters": dict(self.parameters)}


# ---------------------------------------------------------------------- public API
def place_standard_vois(
    volume: Volume,
    *,
    diameter_mm: float = STANDARD_DIAMETER_MM,
    height_mm: float = STANDARD_HEIGHT_MM,
    anterior_inset_mm: float = 5.0,
    offset_mm: Optional[float] = None,
    threshold: Optional[float] = None,
    axis_lps: AxisSpec = None,
    ap_direction_lps: Optional[Sequence[float]] = None,
    require_inside: bool = True,
) -> StandardPlacement:
    """Find the vertebral body and place the study's two standardized cylinder VOIs.

    Parameters
    ----------
    volume : Volume
        MDCT (HU), micro-CT or micro-CT-like volume of one vertebral body (whole body, or a
        block holding the VOIs and the anterior cortex).
    diameter_mm, height_mm : float, keyword-only
        VOI size (study: 15 x 5 mm).
    anterior_inset_mm : float
        Depth of line B inside the anterior cortex (study: 5 mm); the VOI centre lies
        ``anterior_inset_mm + diameter_mm / 2`` posterior of the anterior edge.
    offset_mm : float, optional
        Distance from the mid-height plane to each VOI's outer face; default = height,
        so the VOIs span [mid, mid + 5 mm] and [mid - 5 mm, mid]. Must be >= height / 2.
    threshold : float, optional
        Bone/background threshold in the volume's units; default Otsu.
    axis_lps : None, "patient", "image" or 3 floats
        Superior-inferior axis of the body: patient LPS +z (default), the volume's k
        axis, or an explicit LPS vector.
    ap_direction_lps : 3 floats, optional
        Force the antero-posterior direction (pointing posterior); default: found.
    require_inside : bool
        Raise :class:`VOIError` when a VOI is not entirely inside the volume.

    Returns
    -------
    StandardPlacement
        ``vois`` = (superior, inferior) and the :class:`BodyDetection`.

    Raises
    ------
    VOIError
        No body found, anterior cortex outside the volume, or a VOI outside the volume.

    Examples
    --------
    >>> placement = place_standard_vois(read_volume("mdct.nrrd"))       # doctest: +SKIP
    >>> [voi.name for voi in placement.vois]                            # doctest: +SKIP
    ['superior', 'inferior']
    >>> placement.body.anterior_edge_lps_mm                             # doctest: +SKIP
    (-0.58, -20.1, -1.01)
    """
    if offset_mm is None:
        offset_mm = height_mm
    for name, value in (("diameter_mm", diameter_mm), ("height_mm", height_mm), ("offset_mm", offset_mm)):
        if not np.isfinite(value) or value <= 0:
            raise InvalidParameterError(f"{name} must be a positive number of mm, got {value}")
    if not np.isfinite(anterior_inset_mm) or anterior_inset_mm < 0:
        raise InvalidParameterError(f"anterior_inset_mm must be >= 0, got {anterior_inset_mm}")
    if offset_mm < height_mm / 2:
        raise InvalidParameterError(
            f"offset_mm ({offset_mm}) must be at least half the height ({height_mm / 2}) so that each VOI stays on its side"
        )
    body = detect_vertebral_body(volume, threshold=threshold, axis_lps=axis_lps, ap_direction_lps=ap_direction_lps)
    axis = np.asarray(body.axis_lps)
    centre_mid = np.asarray(body.anterior_edge_lps_mm) + np.asarray(body.ap_direction_lps) * (anterior_inset_mm + diameter_mm / 2)
    shift = offset_mm - height_mm / 2
    vois = tuple(
        CylinderVOI(tuple(centre_mid + sign * shift * axis), tuple(axis), diameter_mm, height_mm, name=name)
        for name, sign in (("superior", 1.0), ("inferior", -1.0))
    )
    if require_inside:
        for voi in vois:
            check_voi_inside(volume, voi)
    parameters = {
        "diameter_mm": float(diameter_mm),
        "height_mm": float(height_mm),
        "anterior_inset_mm": float(anterior_inset_mm),
        "offset_mm": float(offset_mm),
        "centre_behind_anterior_edge_mm": float(anterior_inset_mm + diameter_mm / 2),
    }
    return StandardPlacement(vois=vois, body=body, parameters=parameters)


def detect_vertebral_body(
    volume: Volume,
    *,
    threshold: Optional[float] = None,
    axis_lps: AxisSpec = None,
    ap_direction_lps: Optional[Sequence[float]] = None,
) -> BodyDetection:
    """Find the vertebral body's mid-height section, line A and the anterior edge.

    See the module docstring for the method. Raises :class:`VOIError` when no body is found.
    """
    validate_voxels(volume)
    axis = _resolve_axis(volume, axis_lps)
    notes: List[str] = []
    coarse, coarse_geom, used_threshold, background = _coarse_body_mask(volume, threshold)
    points = coarse_geom.index_zyx_to_lps(np.argwhere(coarse))
    along = points @ axis
    # Extent along the axis of the volume itself (to know whether the body is cut).
    vol_along = _volume_extent_along(volume, axis)
    step_along = _COARSE_MM
    body_lo, body_hi = float(along.min()), float(along.max())
    height_cut = body_lo <= vol_along[0] + 1.5 * step_along or body_hi >= vol_along[1] - 1.5 * step_along
    if height_cut:
        mid = 0.5 * (vol_along[0] + vol_along[1])
        notes.append("body cut by the volume's ends: mid-height = middle of the volume along the axis")
    else:
        mid = 0.5 * (body_lo + body_hi)
    section = points[np.abs(along - mid) <= 1.0]
    if len(section) < 20:
        raise VOIError("no vertebral body cross-section found at mid-height; check the volume and the threshold")
    # In-plane frame.
    posterior = _orthogonalise(_POSTERIOR if ap_direction_lps is None else np.asarray(ap_direction_lps, float), axis)
    section_cut = _touches_sides(coarse, axis, coarse_geom, mid)
    if ap_direction_lps is None and not section_cut:
        ap = _principal_ap_direction(section, axis, posterior)
    else:
        ap = posterior
    lr = np.cross(ap, axis)
    w = section @ lr
    v = section @ ap
    mid_point = mid * axis  # a point of the mid-plane (projection of the origin)
    if not section_cut:
        w0 = float(w.mean())
    else:
        w0 = _anterior_vertex_w(volume, w, v, lr, ap, axis, mid_point, background)
        notes.append("section cut by the volume's sides: line A through the vertex of the anterior outline")
    # Coarse anterior boundary on line A, then a full-resolution edge.
    near = np.abs(w - w0) <= 1.0
    if not near.any():
        raise VOIError("line A does not cross the body section; check ap_direction_lps")
    v_front = float(v[near].min()) - _COARSE_MM / 2
    start = mid_point + w0 * lr + v_front * ap
    s_edge = _edge_offset(volume, start, -ap, lr, axis, band_mm=1.0, band_axial_mm=1.0, background=background)
    anterior_edge = start - s_edge * ap
    v_edge = v_front - s_edge
    v_back = float(v[near].max()) + _COARSE_MM / 2
    depth = v_back - v_edge
    centre = mid_point + w0 * lr + 0.5 * (v_edge + v_back) * ap
    width = float(w.max() - w.min()) + _COARSE_MM
    if section_cut:
        notes.append("width/depth are of the part inside the volume")
    return BodyDetection(
        anterior_edge_lps_mm=tuple(float(x) for x in anterior_edge),
        centre_lps_mm=tuple(float(x) for x in centre),
        ap_direction_lps=tuple(float(x) for x in ap),
        lr_direction_lps=tuple(float(x) for x in lr),
        axis_lps=tuple(float(x) for x in axis),
        mid_height_lps_mm=tuple(float(x) for x in (centre)),
        width_mm=width,
        depth_mm=float(depth),
        height_mm=float(body_hi - body_lo + _COARSE_MM),
        threshold=float(used_threshold),
        section_cut=bool(section_cut),
        height_cut=bool(height_cut),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------- helpers
def _resolve_axis(volume: Volume, axis_lps: AxisSpec) -> np.ndarray:
    if axis_lps is None or (isinstance(axis_lps, str) and axis_lps == "patient"):
        axis = _SUPERIOR.copy()
    elif isinstance(axis_lps, str):
        if axis_lps != "image":
            raise InvalidParameterError(f"axis_lps must be 'patient', 'image' or 3 numbers, got {axis_lps!r}")
        axis = volume.direction_lps[:, 2].copy()
    else:
        axis = np.asarray(axis_lps, dtype=float).reshape(-1)
        if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) < 1e-9:
            raise InvalidParameterError(f"axis_lps must be a non-zero 3-vector, got {axis_lps!r}")
    axis = axis / np.linalg.norm(axis)
    return axis if axis @ _SUPERIOR >= 0 else -axis


def _orthogonalise(vector: np.ndarray, axis: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=float).reshape(3)
    projected = vector - (vector @ axis) * axis
    norm = np.linalg.norm(projected)
    if norm < 1e-6:
        raise InvalidParameterError("the AP direction must not be parallel to the axis")
    return projected / norm


def _block_mean(array: np.ndarray, factors: Tuple[int, int, int]) -> np.ndarray:
    """Mean over non-overlapping blocks (edges padded by replication), float32, slab by slab."""
    fz, fy, fx = factors
    nz, ny, nx = array.shape
    out_shape = (-(-nz // fz), -(-ny // fy), -(-nx // fx))
    out = np.empty(out_shape, dtype=np.float32)
    pad_y, pad_x = out_shape[1] * fy - ny, out_shape[2] * fx - nx
    for oz in range(out_shape[0]):
        slab = array[oz * fz : min((oz + 1) * fz, nz)].astype(np.float32)
        slab = np.pad(slab, ((0, 0), (0, pad_y), (0, pad_x)), mode="edge")
        out[oz] = slab.reshape(slab.shape[0], out_shape[1], fy, out_shape[2], fx).mean(axis=(0, 2, 4))
    return out


def _block_any(mask: np.ndarray, factors: Tuple[int, int, int]) -> np.ndarray:
    fz, fy, fx = factors
    shape = tuple(-(-n // f) for n, f in zip(mask.shape, factors))
    padded = np.zeros(tuple(s * f for s, f in zip(shape, factors)), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1], : mask.shape[2]] = mask
    return padded.reshape(shape[0], fz, shape[1], fy, shape[2], fx).any(axis=(1, 3, 5))


def _downsampled_geometry(volume: Volume, factors_zyx, shape_zyx) -> Volume:
    """Geometry of a block-reduced grid (block centres), as an empty-ish Volume."""
    f = np.array(factors_zyx, dtype=float)
    origin = volume.index_zyx_to_lps((f - 1) / 2)
    spacing_xyz = tuple(np.array(volume.spacing_xyz_mm) * f[::-1])
    return Volume(np.zeros((1, 1, 1), np.uint8), spacing_xyz, tuple(origin), volume.direction_lps), shape_zyx


def _otsu(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        raise VOIError("the volume is uniform: no vertebral body to find")
    hist, edges = np.histogram(values, bins=512, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight = np.cumsum(hist).astype(float)
    mean = np.cumsum(hist * centres)
    total, total_mean = weight[-1], mean[-1]
    w1 = total - weight
    valid = (weight > 0) & (w1 > 0)
    between = np.zeros_like(weight)
    m0 = mean[valid] / weight[valid]
    m1 = (total_mean - mean[valid]) / w1[valid]
    between[valid] = weight[valid] * w1[valid] * (m0 - m1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _coarse_body_mask(volume: Volume, threshold: Optional[float]):
    from scipy import ndimage

    spacing = np.array(volume.spacing_zyx_mm)
    fine_f = tuple(int(max(1, round(_FINE_MM / s))) for s in spacing)
    fine = _block_mean(volume.array, fine_f)
    if threshold is None:
        used = _otsu(fine[:: max(1, fine.shape[0] // 64)].ravel())
    else:
        used = float(threshold)
        if not np.isfinite(used):
            raise InvalidParameterError(f"threshold must be finite, got {threshold}")
    bone = fine > used
    below = fine[:: max(1, fine.shape[0] // 64)]
    below = below[below <= used]
    background = float(np.median(below)) if below.size else used
    fine_spacing = spacing * np.array(fine_f)
    coarse_f = tuple(int(max(1, round(_COARSE_MM / s))) for s in fine_spacing)
    coarse = _block_any(bone, coarse_f)
    total_f = tuple(a * b for a, b in zip(fine_f, coarse_f))
    geom, _ = _downsampled_geometry(volume, total_f, coarse.shape)
    coarse = ndimage.binary_closing(coarse, structure=np.ones((3, 3, 3), bool), iterations=2, border_value=0) | coarse
    labels, n = ndimage.label(coarse)
    if n == 0:
        raise VOIError(
            f"no vertebral body found: no voxel above the threshold {used:g}; check the volume or give a threshold"
        )
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    body = ndimage.binary_fill_holes(body)
    for k in range(body.shape[0]):  # axial holes open at the top/bottom of a block
        body[k] = ndimage.binary_fill_holes(body[k])
    body_volume_mm3 = body.sum() * np.prod(np.array(geom.spacing_xyz_mm))
    if body_volume_mm3 < 50.0:
        raise VOIError(
            f"no vertebral body found: the largest structure above the threshold {used:g} is only "
            f"{body_volume_mm3:.0f} mm^3; check the volume or give a threshold"
        )
    return body, geom, used, background


def _volume_extent_along(volume: Volume, direction: np.ndarray) -> Tuple[float, float]:
    shape = np.array(volume.shape_zyx, dtype=float)
    corners = np.array([[z, y, x] for z in (-0.5, shape[0] - 0.5) for y in (-0.5, shape[1] - 0.5) for x in (-0.5, shape[2] - 0.5)])
    proj = volume.index_zyx_to_lps(corners) @ direction
    return float(proj.min()), float(proj.max())


def _touches_sides(coarse: np.ndarray, axis: np.ndarray, geom: Volume, mid: float) -> bool:
    """Whether the mid-height section reaches the volume's sides (not its ends)."""
    idx = np.argwhere(coarse)
    along = geom.index_zyx_to_lps(idx) @ axis
    sel = idx[np.abs(along - mid) <= 1.0]
    shape = np.array(coarse.shape)
    # Index axes mostly perpendicular to the body axis are the "sides".
    dirs = geom.direction_lps.T[::-1]  # rows in (z, y, x) order
    for a in range(3):
        if abs(dirs[a] @ axis) > 0.7:
            continue
        if (sel[:, a] == 0).any() or (sel[:, a] == shape[a] - 1).any():
            return True
    return False


def _principal_ap_direction(section: np.ndarray, axis: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    lr_ref = np.cross(posterior, axis)
    coords = np.column_stack([section @ lr_ref, section @ posterior])
    coords -= coords.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(coords.T @ coords / len(coords))
    if eigvals[1] < 1.05 * eigvals[0]:  # near-round section: axes undefined
        return posterior
    best = eigvecs[:, int(np.argmax(np.abs(eigvecs[1])))]
    best = best if best[1] > 0 else -best
    direction = best[0] * lr_ref + best[1] * posterior
    return direction / np.linalg.norm(direction)


def _sample_profiles(volume: Volume, start, outward, lateral, axis, s, band_mm, band_axial_mm):
    """Mean profile along ``outward`` (positions ``s`` mm from ``start``), averaged over a band."""
    from scipy import ndimage

    step = min(volume.spacing_xyz_mm)
    lat = np.arange(-band_mm, band_mm + 1e-9, max(step, band_mm / 8)) if band_mm > 0 else np.zeros(1)
    ax = np.arange(-band_axial_mm, band_axial_mm + 1e-9, max(step, band_axial_mm / 8)) if band_axial_mm > 0 else np.zeros(1)
    grid = (
        start[None, None, None, :]
        + s[:, None, None, None] * outward
        + lat[None, :, None, None] * lateral
        + ax[None, None, :, None] * axis
    )
    idx = volume.lps_to_index_zyx(grid.reshape(-1, 3))
    values = ndimage.map_coordinates(volume.array, idx.T, order=1, mode="constant", cval=np.nan, output=np.float64)
    shape = np.array(volume.shape_zyx)
    inside = np.all((idx >= -0.01) & (idx <= shape - 0.99), axis=1)
    values[~inside] = np.nan
    values = values.reshape(len(s), -1)
    with np.errstate(all="ignore"):
        counts = np.isfinite(values).sum(axis=1)
        profile = np.where(counts > 0, np.nansum(values, axis=1) / np.maximum(counts, 1), np.nan)
    return profile


def _edge_offset(
    volume: Volume, start, outward, lateral, axis, *, band_mm: float, band_axial_mm: float, background: float
) -> float:
    """Distance (mm, along ``outward``) from ``start`` to the outer half-level crossing of the cortex.

    ``background`` (the volume's typical below-threshold level) stands in for the tissue in
    front of the cortex when the volume holds too little of it.
    """
    step = min(volume.spacing_xyz_mm) / 2
    s = np.arange(-2.0, 2.5 + 1e-9, step)
    profile = _sample_profiles(volume, np.asarray(start), outward, lateral, axis, s, band_mm, band_axial_mm)
    finite = np.isfinite(profile)
    for s_min in (0.75, 0.4):
        outside = (s >= s_min) & finite
        if outside.sum() >= 3:
            background = float(np.median(profile[outside]))
            break
    inner = (s <= 1.0) & finite
    if not inner.any():
        raise VOIError("the anterior cortex is outside the volume; check the volume and the VOI axis")
    peak = float(np.max(profile[inner]))
    if peak <= background:
        raise VOIError("no cortex edge found in front of the vertebral body; check the volume")
    level = 0.5 * (peak + background)
    i = int(np.where(finite & (profile >= level))[0].max())  # outermost sample at or above the level
    if i + 1 >= len(s) or not finite[i + 1]:
        raise VOIError(
            "the anterior cortex is at the edge of the volume: no surrounding tissue in front of it; "
            "use a volume that includes at least 1 mm in front of the vertebral body"
        )
    p0, p1 = profile[i], profile[i + 1]
    return float(s[i] + (p0 - level) / (p0 - p1) * (s[i + 1] - s[i]))


def _anterior_vertex_w(volume: Volume, w, v, lr, ap, axis, mid_point, background: float) -> float:
    """Lateral position (mm along ``lr``) of the vertex of the anterior outline of a cut section."""
    w_lo, w_hi = float(w.min()), float(w.max())
    half = min(6.0, 0.5 * (w_hi - w_lo) - 1.0)
    if half < 2.0:
        raise VOIError("the body section inside the volume is too narrow to find its antero-posterior midline")
    # coarse outline: most anterior v per lateral bin, vertex of a parabola
    bins = np.round((w - w_lo) / _COARSE_MM).astype(int)
    front = np.full(bins.max() + 1, np.inf)
    np.minimum.at(front, bins, v)
    wb = w_lo + np.arange(len(front)) * _COARSE_MM
    ok = np.isfinite(front)
    w0 = float(wb[ok][np.argmin(front[ok])])
    w0 = float(np.clip(w0, w_lo + half + 0.5, w_hi - half - 0.5)) if w_hi - w_lo > 2 * half + 1 else 0.5 * (w_lo + w_hi)
    for _ in range(2):  # refine: full-resolution edges at several lateral positions, parabola vertex
        offsets = np.linspace(-half, half, 13)
        edges = []
        for d in offsets:
            wd = w0 + d
            near = np.abs(w - wd) <= 0.75
            if not near.any():
                edges.append(np.nan)
                continue
            v_front = float(v[near].min()) - _COARSE_MM / 2
            start = mid_point + wd * lr + v_front * ap
            try:
                s_edge = _edge_offset(volume, start, -ap, lr, axis, band_mm=0.25, band_axial_mm=1.5, background=background)
            except VOIError:  # this lateral position leaves the volume: skip it
                s_edge = np.nan
            edges.append(v_front - s_edge)
        edges = np.array(edges)
        good = np.isfinite(edges)
        if good.sum() < 5:
            raise VOIError("could not trace the anterior cortex of the vertebral body")
        c2, c1, _ = np.polyfit(offsets[good], edges[good], 2)
        if c2 <= 1e-4:
            raise VOIError(
                "the anterior cortex inside the volume is not convex: cannot find the antero-posterior midline; "
                "give the AP direction and a volume that shows the whole body width"
            )
        shift = float(np.clip(-c1 / (2 * c2), -half, half))
        w0 = w0 + shift
        if abs(shift) < 0.05:
            break
    return w0
