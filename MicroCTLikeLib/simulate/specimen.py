"""One synthetic specimen: truth microstructure, micro-CT image and MDCT image.

The fine (52 um) volumes are built slab by slab along z so the whole-body preset fits
in a few GB: per slab the body's signed distances, the perforated-sheet bone set and its
anti-aliased occupancy give the binary truth, the micro-CT grey image (PSF, cupping,
noise) and the HU map that is pre-averaged to ~0.1 mm for the MDCT forward model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, Optional

import numpy as np
from scipy import ndimage, special

from .. import __version__
from ..errors import InvalidParameterError
from ..progress import CancelFlag, ProgressCallback, raise_if_cancelled, report_progress
from ..volume import Volume
from .body import BodyGeometry
from .fields import bandpass_field, quantile_threshold
from .mdct import FWHM_TO_SIGMA, forward_mdct
from .parameters import MICROCT_VOXEL_MM, Preset, draw_specimen_parameters, get_preset

#: orientation facts every simulated volume carries (LPS, identity direction for micro-CT)
ORIENTATION = {
    "coordinate_system": "LPS",
    "anterior_direction_lps": [0.0, -1.0, 0.0],
    "superior_direction_lps": [0.0, 0.0, 1.0],
    "note": "anterior edge at low y (row 0 side of an axial slice), superior at high z",
}

_SLAB = 16  # z slices per slab (even: the 2x2x2 pre-averaging needs aligned pairs)
_PSF_TRUNCATE = 3.5
_EPS_GRAD = 1e-3  # 1/mm; keeps (level / |grad|) finite at field extrema far from any surface


@dataclasses.dataclass
class Specimen:
    """A simulated vertebra.

    Attributes
    ----------
    microct : Volume
        int16 micro-CT values (HU-calibrated, Inveon-like) at 0.052 mm, identity direction.
    mdct : Volume
        int16 HU at 0.195 x 0.195 x 0.1 mm; its direction is the small random rotation.
    truth_binary : Volume
        uint8 0/255 bone (trabeculae + cortex + endplates), same grid as ``microct``.
    truth : dict
        Parameters (targets, lambda, p, t, ...), achieved BV/TV, body geometry (LPS mm),
        image parameters, orientation, seed, preset, code version (JSON-ready).
    """

    microct: Volume
    mdct: Volume
    truth_binary: Volume
    truth: Dict[str, Any]


def block_bounds_lps_mm(preset: Preset, body: BodyGeometry) -> np.ndarray:
    """(3, 2) array: [x, y, z] rows of [low, high] LPS bounds of the simulated box."""
    cx, cy, cz = body.centre_lps_mm
    if preset.block_half_width_mm is None:
        m = preset.margin_mm
        x = (cx - body.width_mm / 2 - m, cx + body.width_mm / 2 + m)
        y = (cy - body.depth_mm / 2 - m, cy + body.depth_mm / 2 + m)
    else:
        x = (cx - preset.block_half_width_mm, cx + preset.block_half_width_mm)
        y0, y1 = preset.block_y_from_anterior_mm
        y = (body.anterior_edge_y_mm + y0, body.anterior_edge_y_mm + y1)
    z = (cz - preset.block_half_height_mm, cz + preset.block_half_height_mm)
    return np.array([x, y, z], dtype=float)


def simulate_specimen(
    seed: int,
    *,
    preset: str = "small",
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelFlag] = None,
) -> Specimen:
    """Simulate one specimen, bit-reproducibly from ``seed``.

    Parameters
    ----------
    seed : int
        Non-negative integer; the only source of randomness (no global RNG is touched).
    preset : {"small", "full", "tiny"}
        "small": an 18 x 23 x 13 mm block holding the two standard VOIs (seconds);
        "full": the whole body +-12.5 mm about mid-height (about a minute, ~5 GB);
        "tiny": a 10 x 8 x 4 mm block for tests.
    progress, cancel
        See :mod:`MicroCTLikeLib.progress`.

    Returns
    -------
    Specimen

    Examples
    --------
    >>> s = simulate_specimen(7, preset="tiny")
    >>> s.mdct.array.dtype, s.mdct.spacing_xyz_mm
    (dtype('int16'), (0.195, 0.195, 0.1))
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    chosen = get_preset(preset)
    sequence = np.random.SeedSequence(int(seed))
    param_seq, g_seq, h_seq, microct_seq, mdct_seq = sequence.spawn(5)
    params = draw_specimen_parameters(np.random.default_rng(param_seq))
    body = BodyGeometry.from_parameters(params)
    v = MICROCT_VOXEL_MM
    total_steps = 5
    report_progress(progress, 0, total_steps, "fields")

    # --- grid of the fine volumes (even sizes for the 2x2x2 pre-averaging)
    bounds = block_bounds_lps_mm(chosen, body)
    extent = bounds[:, 1] - bounds[:, 0]
    n_xyz = np.maximum(2, 2 * np.round(extent / (2 * v)).astype(int))
    extent = n_xyz * v  # snapped
    origin = bounds[:, 0] + v / 2
    nx, ny, nz = (int(n) for n in n_xyz)
    x_mm = origin[0] + v * np.arange(nx)
    y_mm = origin[1] + v * np.arange(ny)
    z_mm = origin[2] + v * np.arange(nz)
    sdf_xy = body.sdf_xy(x_mm[None, :], y_mm[:, None])
    sdf_z = body.sdf_z(z_mm)

    # --- the two fields
    field_kwargs = dict(z_elongation=params["z_elongation"], shell_relative_width=params["shell_relative_width"])
    g = bandpass_field((nz, ny, nx), v, np.random.default_rng(g_seq), wavelength_mm=params["wavelength_mm"], **field_kwargs)
    raise_if_cancelled(cancel, "simulation")
    h = bandpass_field((nz, ny, nx), v, np.random.default_rng(h_seq), wavelength_mm=params["wavelength_mm"], **field_kwargs)
    raise_if_cancelled(cancel, "simulation")
    report_progress(progress, 1, total_steps, "threshold")

    # --- holes: h below its p-quantile (of the standard normal the field is normalised to)
    p = params["hole_fraction"]
    hole_level = float(special.ndtri(p)) if p > 0 else -np.inf

    def slabs() -> Iterator[slice]:
        for z0 in range(0, nz, _SLAB):
            yield slice(z0, min(nz, z0 + _SLAB))

    def cancellous(zs: slice) -> np.ndarray:
        return body.body_and_cancellous_sdf(sdf_xy, sdf_z[zs])[1] >= 0

    n_cancellous = sum(int(cancellous(zs).sum()) for zs in slabs())
    if n_cancellous == 0:
        raise InvalidParameterError(f"preset {preset!r}: the simulated box holds no cancellous bone")

    def candidate_values():
        for zs in slabs():
            keep = cancellous(zs) & (h[zs] > hole_level)
            yield np.abs(g[zs][keep])

    target_count = int(round(params["target_bv_tv"] * n_cancellous))
    t = quantile_threshold(candidate_values, target_count)
    raise_if_cancelled(cancel, "simulation")
    report_progress(progress, 2, total_steps, "micro-CT")

    # --- slab loop: truth, micro-CT, fine HU map
    truth = np.zeros((nz, ny, nx), dtype=np.uint8)
    microct = np.zeros((nz, ny, nx), dtype=np.int16)
    pre = np.zeros((nz // 2, ny // 2, nx // 2), dtype=np.float32)
    psf_sigma = params["microct_psf_fwhm_voxels"] * FWHM_TO_SIGMA
    halo = int(_PSF_TRUNCATE * psf_sigma + 0.5)
    cupping = _cupping_weight(x_mm, y_mm, params["microct_cupping"])
    noise_sd = (params["microct_bone_hu"] - params["microct_marrow_hu"]) / params["microct_cnr"]
    noise_words = microct_seq.generate_state(2)
    bone_voxels = 0
    for index, zs in enumerate(slabs()):
        raise_if_cancelled(cancel, "simulation")
        lo, hi = max(0, zs.start - halo), min(nz, zs.stop + halo)
        ext = slice(lo, hi)
        sdf_body, sdf_canc = body.body_and_cancellous_sdf(sdf_xy, sdf_z[ext])
        sdf_trab = _perforated_sheet_sdf(g, h, ext, t, hole_level, v)
        occ_body = _occupancy(sdf_body, v)
        occ_canc = _occupancy(sdf_canc, v)
        occ_trab = occ_canc * _occupancy(sdf_trab, v)
        occ_cortex = occ_body - occ_canc
        occ_marrow = occ_body - occ_cortex - occ_trab
        occ_bath = 1.0 - occ_body
        # binary truth: the bone set itself (occupancy >= 0.5 inside the core, cortex outside it)
        inner = slice(zs.start - lo, zs.stop - lo)
        bone = (sdf_body[inner] >= 0) & ((sdf_canc[inner] < 0) | (sdf_trab[inner] >= 0))
        truth[zs] = bone.astype(np.uint8) * 255
        bone_voxels += int((bone & (sdf_canc[inner] >= 0)).sum())
        # micro-CT: grey levels by occupancy, cupping (on attenuation), PSF, white noise
        grey = (
            params["microct_bath_hu"] * occ_bath
            + params["microct_marrow_hu"] * occ_marrow
            + params["microct_bone_hu"] * (occ_trab + occ_cortex)
        )
        grey = (grey + 1000.0) * (1.0 - cupping)[None] - 1000.0
        grey = ndimage.gaussian_filter(grey, sigma=psf_sigma, mode="nearest", truncate=_PSF_TRUNCATE)[inner]
        slab_rng = np.random.default_rng([int(noise_words[0]), int(noise_words[1]), index])
        grey += slab_rng.standard_normal(grey.shape, dtype=np.float32) * np.float32(noise_sd)
        microct[zs] = np.clip(np.rint(grey), -1024, 32767).astype(np.int16)
        # MDCT HU map at 52 um, averaged 2x2x2 to 0.104 mm
        hu = (
            params["mdct_bath_hu"] * occ_bath
            + params["mdct_marrow_hu"] * occ_marrow
            + params["mdct_tissue_hu"] * occ_trab
            + params["mdct_cortex_hu"] * occ_cortex
        )[inner]
        k = hu.shape[0] // 2
        pre[zs.start // 2 : zs.start // 2 + k] = hu.reshape(k, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))
        report_progress(progress, 2, total_steps, f"micro-CT slab {index + 1}")
    del g, h

    geometry = dict(spacing_xyz_mm=(v, v, v), origin_lps_mm=tuple(origin), direction_lps=np.eye(3))
    common_meta = {"seed": int(seed), "preset": preset, "orientation": ORIENTATION, "simulator_version": __version__}
    microct_volume = Volume(microct, metadata={"modality": "micro-CT", "units": "HU (int16)", **common_meta}, **geometry)
    truth_volume = Volume(truth, metadata={"modality": "truth", "units": "0/255 bone mask", **common_meta}, **geometry)

    report_progress(progress, 3, total_steps, "MDCT")
    raise_if_cancelled(cancel, "simulation")
    pre_volume = Volume(pre, (2 * v,) * 3, tuple(origin + v / 2), np.eye(3))
    mdct_volume = forward_mdct(pre_volume, params, np.random.default_rng(mdct_seq), block_extent_xyz_mm=extent)
    mdct_volume = mdct_volume.with_array(mdct_volume.array, **common_meta)

    truth_info: Dict[str, Any] = {
        "seed": int(seed),
        "preset": preset,
        "simulator_version": __version__,
        "orientation": ORIENTATION,
        "parameters": params,
        "threshold_t": float(t),
        "hole_level_q": float(hole_level) if np.isfinite(hole_level) else None,
        "achieved_bv_tv": bone_voxels / n_cancellous,
        "n_cancellous_voxels": int(n_cancellous),
        "body": body.to_dict(),
        "microct": {
            "dtype": "int16",
            "units": "HU (micro-CT calibration)",
            "voxel_mm": v,
            "shape_zyx": [nz, ny, nx],
            "noise_sd_hu": float(noise_sd),
        },
        "mdct": {
            "dtype": "int16",
            "units": "HU",
            "spacing_xyz_mm": list(mdct_volume.spacing_xyz_mm),
            "shape_zyx": list(mdct_volume.shape_zyx),
            "origin_lps_mm": list(mdct_volume.origin_lps_mm),
            "direction_lps": mdct_volume.direction_lps.tolist(),
        },
        "block_bounds_lps_mm": bounds.tolist(),
    }
    report_progress(progress, total_steps, total_steps, "done")
    return Specimen(microct=microct_volume, mdct=mdct_volume, truth_binary=truth_volume, truth=truth_info)


def _occupancy(sdf_mm: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Anti-aliased occupancy clip(0.5 + sdf / voxel, 0, 1) (float32)."""
    return np.clip(np.float32(0.5) + sdf_mm * np.float32(1.0 / voxel_mm), 0.0, 1.0).astype(np.float32)


def _perforated_sheet_sdf(g: np.ndarray, h: np.ndarray, zs: slice, t: float, hole_level: float, voxel_mm: float) -> np.ndarray:
    """First-order signed distance (mm, + in bone) of {|g| < t} minus {h < q} on slab ``zs``.

    Each level set's distance is (level difference) / |gradient|; the bone set is the
    intersection of the sheet and the outside of the holes, hence the minimum.
    """
    nz = g.shape[0]
    lo, hi = max(0, zs.start - 1), min(nz, zs.stop + 1)  # one extra slice each side for the gradient
    inner = slice(zs.start - lo, zs.stop - lo)
    sheet = (np.float32(t) - np.abs(g[zs])) / _gradient_magnitude(g[lo:hi], voxel_mm, inner)
    if not np.isfinite(hole_level):
        return sheet
    outside_holes = (h[zs] - np.float32(hole_level)) / _gradient_magnitude(h[lo:hi], voxel_mm, inner)
    return np.minimum(sheet, outside_holes)


def _gradient_magnitude(field: np.ndarray, voxel_mm: float, inner: slice) -> np.ndarray:
    """|grad field| (1/mm, central differences) on the ``inner`` slices, floored to keep divisions finite."""
    if field.shape[0] >= 2:
        gz, gy, gx = np.gradient(field, voxel_mm)
    else:  # a one-slice volume has no z derivative
        gy, gx = np.gradient(field[0], voxel_mm)
        gz = np.zeros_like(field)
        gy, gx = gy[None], gx[None]
    magnitude = np.sqrt(gz[inner] ** 2 + gy[inner] ** 2 + gx[inner] ** 2)
    return np.maximum(magnitude, np.float32(_EPS_GRAD))


def _cupping_weight(x_mm: np.ndarray, y_mm: np.ndarray, cupping: float, fov_radius_mm: float = 40.0) -> np.ndarray:
    """Fractional attenuation deficit (y, x): ``cupping`` at the scanner axis, 0 at the FOV edge.

    The scanner axis is taken through the middle of the simulated box; the 80 mm field of
    view is the study's.
    """
    xc, yc = 0.5 * (x_mm[0] + x_mm[-1]), 0.5 * (y_mm[0] + y_mm[-1])
    r2 = ((x_mm[None, :] - xc) ** 2 + (y_mm[:, None] - yc) ** 2) / fov_radius_mm**2
    return (cupping * np.clip(1.0 - r2, 0.0, 1.0)).astype(np.float32)
