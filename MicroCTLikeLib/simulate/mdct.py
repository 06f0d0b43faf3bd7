"""MDCT forward model: from a fine HU map to a clinical-CT-like int16 volume.

Steps (SCIENCE.md section 5; blur and noise levels are estimates there):
1. the caller pre-averages the 52 um HU map 2 x 2 x 2 to ~0.1 mm;
2. Gaussian blur: in-plane FWHM 0.6 mm, slice profile FWHM 0.67 mm (minus the blur the
   pre-averaging already did);
3. resampling onto the MDCT grid (0.195 x 0.195 x 0.1 mm), rotated 1-2 degrees about a
   random axis and shifted by a random sub-voxel offset; the grid's origin and direction
   say where it lies in LPS, so MDCT and micro-CT overlay physically;
4. noise of SD ~40 HU, its spectrum shaped like filtered back-projection noise: amplitude
   sqrt(|f|) * MTF(f) in-plane and the slice profile's transfer function through-plane;
5. rounding to int16 HU.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import scipy.fft
from scipy import ndimage

from ..volume import Volume
from .parameters import MDCT_SPACING_XYZ_MM

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def rotation_matrix(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation by ``angle_deg`` about the unit ``axis`` (Rodrigues' formula)."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    theta = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)


def blur_preaveraged(hu: np.ndarray, voxel_mm: float, *, inplane_fwhm_mm: float, slice_fwhm_mm: float) -> np.ndarray:
    """Gaussian scanner blur on an isotropic pre-averaged grid (float32, new array).

    The box of the pre-averaging (width = ``voxel_mm``) already blurred by variance
    voxel^2 / 12; it is subtracted so the total matches the requested FWHM.
    """
    box_var = voxel_mm**2 / 12.0
    sigma_xy = np.sqrt(max((inplane_fwhm_mm * FWHM_TO_SIGMA) ** 2 - box_var, 1e-6)) / voxel_mm
    sigma_z = np.sqrt(max((slice_fwhm_mm * FWHM_TO_SIGMA) ** 2 - box_var, 1e-6)) / voxel_mm
    return ndimage.gaussian_filter(hu, sigma=(sigma_z, sigma_xy, sigma_xy), mode="nearest").astype(np.float32)


def mdct_grid(
    block_origin_lps_mm: np.ndarray,
    block_extent_xyz_mm: np.ndarray,
    rotation: np.ndarray,
    shift_voxels: np.ndarray,
    *,
    margin_mm: float,
) -> Tuple[Tuple[int, int, int], np.ndarray]:
    """Size (x, y, z) and origin (LPS mm) of a rotated MDCT grid inside the fine block.

    The grid is centred on the block, shrunk by ``margin_mm`` plus what the rotation
    swings out, so every MDCT sample has fine data (blurred, not padded) behind it.
    """
    spacing = np.array(MDCT_SPACING_XYZ_MM)
    extent = np.asarray(block_extent_xyz_mm, dtype=float)
    half = extent / 2
    swing = np.abs(rotation - np.eye(3)) @ half  # worst-case displacement of a corner per axis
    usable = extent - 2 * (margin_mm + swing + spacing)
    size = np.maximum(np.floor(usable / spacing).astype(int) + 1, 2)
    centre = np.asarray(block_origin_lps_mm, dtype=float) + half
    origin = centre - rotation @ ((size - 1) / 2 * spacing) + rotation @ (np.asarray(shift_voxels) * spacing)
    return tuple(int(n) for n in size), origin  # type: ignore[return-value]


def resample_to_grid(fine: Volume, size_xyz, origin_lps_mm, direction_lps, default_value: float) -> np.ndarray:
    """Linear resampling of ``fine`` onto a grid given in LPS (SimpleITK; float32 out)."""
    import SimpleITK as sitk

    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in size_xyz])
    resampler.SetOutputSpacing(MDCT_SPACING_XYZ_MM)
    resampler.SetOutputOrigin([float(v) for v in origin_lps_mm])
    resampler.SetOutputDirection([float(v) for v in np.asarray(direction_lps).ravel()])
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(float(default_value))
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampler.Execute(fine.to_sitk()))


def shaped_noise(shape_zyx, rng: np.random.Generator, *, sd_hu: float, inplane_fwhm_mm: float, slice_fwhm_mm: float) -> np.ndarray:
    """CT-like correlated noise (float32, SD = ``sd_hu`` over the array).

    White noise filtered by sqrt(|f_xy|) * MTF(f_xy) (ramp-filtered, blurred: the noise
    power spectrum of filtered back-projection is |f| MTF^2) and by the slice profile's
    transfer function along z (overlapping 0.67 mm slices every 0.1 mm are correlated).
    """
    sx, sy, sz = MDCT_SPACING_XYZ_MM
    white = rng.standard_normal(tuple(shape_zyx), dtype=np.float32)
    spectrum = scipy.fft.rfftn(white, workers=2)
    fz = scipy.fft.fftfreq(shape_zyx[0], d=sz)[:, None, None]
    fy = scipy.fft.fftfreq(shape_zyx[1], d=sy)[None, :, None]
    fx = scipy.fft.rfftfreq(shape_zyx[2], d=sx)[None, None, :]
    f_xy = np.sqrt(fy**2 + fx**2)
    s_xy = inplane_fwhm_mm * FWHM_TO_SIGMA
    s_z = slice_fwhm_mm * FWHM_TO_SIGMA
    inplane = np.sqrt(f_xy) * np.exp(-2 * np.pi**2 * s_xy**2 * f_xy**2)
    through = np.exp(-2 * np.pi**2 * s_z**2 * fz**2)
    spectrum *= (inplane * through).astype(np.float32)
    noise = scipy.fft.irfftn(spectrum, s=tuple(shape_zyx), workers=2).astype(np.float32)
    noise *= np.float32(sd_hu / max(float(noise.std(dtype=np.float64)), 1e-12))
    return noise


def forward_mdct(preaveraged_hu: Volume, params: Dict[str, Any], rng: np.random.Generator, *, block_extent_xyz_mm) -> Volume:
    """Simulate the MDCT volume (int16 HU) from a ~0.1 mm HU map with identity direction."""
    voxel_mm = preaveraged_hu.spacing_xyz_mm[0]
    blurred = preaveraged_hu.with_array(
        blur_preaveraged(
            preaveraged_hu.array,
            voxel_mm,
            inplane_fwhm_mm=params["mdct_inplane_fwhm_mm"],
            slice_fwhm_mm=params["mdct_slice_fwhm_mm"],
        )
    )
    rotation = rotation_matrix(np.array(params["mdct_rotation_axis"]), params["mdct_rotation_deg"])
    block_origin = np.array(preaveraged_hu.origin_lps_mm) - voxel_mm / 2  # corner of the block
    size_xyz, origin = mdct_grid(
        block_origin, np.asarray(block_extent_xyz_mm), rotation, np.array(params["mdct_shift_voxels"]), margin_mm=0.2
    )
    hu = resample_to_grid(blurred, size_xyz, origin, rotation, params["mdct_bath_hu"])
    hu += shaped_noise(
        hu.shape,
        rng,
        sd_hu=params["mdct_noise_sd_hu"],
        inplane_fwhm_mm=params["mdct_inplane_fwhm_mm"],
        slice_fwhm_mm=params["mdct_slice_fwhm_mm"],
    )
    hu_int16 = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return Volume(hu_int16, MDCT_SPACING_XYZ_MM, tuple(origin), rotation, metadata={"modality": "MDCT", "units": "HU"})
