"""Specimen parameters of the synthetic cohort: presets and random draws.

Everything a simulated specimen looks like is decided here, from one random generator,
before any voxel is made: microstructure targets, field parameters, vertebral body
geometry, micro-CT and MDCT image parameters. Ranges follow SCIENCE.md sections 1 and 5;
values marked "estimate" there are estimates here too.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Tuple

import numpy as np

from ..errors import InvalidParameterError

#: micro-CT voxel size of the study (Siemens Inveon), mm
MICROCT_VOXEL_MM = 0.052
#: MDCT pixel size (512 px over 100 mm) and slice interval of the study, mm
MDCT_SPACING_XYZ_MM = (0.195, 0.195, 0.1)

# Fitted relations of the perforated-sheet model, y = c lambda^a BVTV^b e^(d p), as
# {"tb_th_mm": (c, a, b, d), "tb_sp_mm": (c, a, b, d)}.
#: SCIENCE.md section 5, measured with "a BoneJ-like thickness" (kept for reference)
SCIENCE_FITS = {"tb_th_mm": (0.4625, 0.862, 0.853, 0.979), "tb_sp_mm": (0.390, 1.002, -0.096, 0.322)}
#: Recalibrated with our BoneJ-exact local thickness (MicroCTLikeLib.morphometry) on 36
#: model cubes at 0.052 mm (simulate/calibration.py; samples in
#: Testing/Data/simulate/calibration_samples.json). R^2 of the log fits 0.995 / 0.997, RMS
#: error 3.3 % / 2.0 %. Our measure reads ~30 % above SCIENCE_FITS; these are the default.
CALIBRATED_FITS = {"tb_th_mm": (0.5389, 0.8322, 0.7905, 1.1170), "tb_sp_mm": (0.5261, 1.0054, -0.0708, 0.3648)}

#: elderly lumbar ranges the targets are drawn from (BV/TV widened to 0.05-0.25 so that
#: cohort correlations span osteoporotic to healthy-elderly bone)
BV_TV_RANGE = (0.05, 0.25)
TB_TH_RANGE_MM = (0.10, 0.22)
TB_SP_RANGE_MM = (0.7, 1.3)
#: admissible field parameters: plate-dominant p, wavelengths the fits were made over
HOLE_FRACTION_RANGE = (0.0, 0.6)
WAVELENGTH_RANGE_MM = (0.8, 3.5)


@dataclasses.dataclass(frozen=True)
class Preset:
    """Which part of the vertebral body is simulated.

    ``block_*`` give the simulated box relative to the body: x (left-right) half-width
    about the AP midline, y (anterior-posterior) start and end measured posteriorly from
    the anterior edge, z half-height about mid-height; ``None`` means the whole body
    plus ``margin_mm`` of bath.
    """

    name: str
    block_half_width_mm: float | None
    block_y_from_anterior_mm: Tuple[float, float] | None
    block_half_height_mm: float
    margin_mm: float = 2.0
    description: str = ""


PRESETS: Dict[str, Preset] = {
    # Test-only: a small block behind the anterior cortex (about 3 M voxels, < 2 s).
    "tiny": Preset("tiny", 4.0, (-1.5, 8.5), 2.0, description="10 x 8 x 4 mm test block (tests only)"),
    # Just enough for the two standard VOIs (15 mm diameter, centre 12.5 mm posterior of the
    # anterior edge, 5 mm above and below mid-height) with a margin that survives the MDCT grid's
    # rotation (the MDCT grid is shrunk so it never samples outside the block); anterior cortex
    # and 1.5 mm of bath in front of it included; x centred on the AP midline.
    "small": Preset("small", 9.0, (-1.5, 21.5), 6.5, description="18 x 23 x 13 mm block holding the standard VOIs"),
    # The whole body, +-12.5 mm about mid-height as in the study (250 MDCT / 500 micro-CT slices).
    "full": Preset("full", None, None, 12.5, description="whole vertebral body, +-12.5 mm about mid-height"),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name`` (InvalidParameterError listing the choices otherwise)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidParameterError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def predicted_tb_th_mm(wavelength_mm: float, bv_tv: float, hole_fraction: float, *, fits=None) -> float:
    """Tb.Th (mm) the fitted relation predicts for field parameters (default: CALIBRATED_FITS)."""
    c, a_l, a_b, a_p = (fits or CALIBRATED_FITS)["tb_th_mm"]
    return c * wavelength_mm**a_l * bv_tv**a_b * math.exp(a_p * hole_fraction)


def predicted_tb_sp_mm(wavelength_mm: float, bv_tv: float, hole_fraction: float, *, fits=None) -> float:
    """Tb.Sp (mm) the fitted relation predicts for field parameters (default: CALIBRATED_FITS)."""
    c, a_l, a_b, a_p = (fits or CALIBRATED_FITS)["tb_sp_mm"]
    return c * wavelength_mm**a_l * bv_tv**a_b * math.exp(a_p * hole_fraction)


def solve_field_parameters(bv_tv: float, tb_th_mm: float, tb_sp_mm: float, *, fits=None) -> Tuple[float, float]:
    """Wavelength lambda (mm) and hole fraction p that the fits map to the three targets.

    Taking logs makes both fits linear in (ln lambda, p) for a given BV/TV; this solves
    that 2 x 2 system. The result may lie outside the admissible ranges; callers check.
    ``fits`` defaults to :data:`CALIBRATED_FITS` (targets as our BoneJ-exact engine reads
    them at 0.052 mm); pass :data:`SCIENCE_FITS` for SCIENCE.md's relations.
    """
    if not (0 < bv_tv < 1) or tb_th_mm <= 0 or tb_sp_mm <= 0:
        raise InvalidParameterError(
            f"targets must satisfy 0 < BV/TV < 1 and positive Tb.Th/Tb.Sp, got {bv_tv}, {tb_th_mm}, {tb_sp_mm}"
        )
    fits = fits or CALIBRATED_FITS
    c_t, l_t, b_t, p_t = fits["tb_th_mm"]
    c_s, l_s, b_s, p_s = fits["tb_sp_mm"]
    matrix = np.array([[l_t, p_t], [l_s, p_s]])
    rhs = np.array(
        [math.log(tb_th_mm / c_t) - b_t * math.log(bv_tv), math.log(tb_sp_mm / c_s) - b_s * math.log(bv_tv)]
    )
    log_lambda, p = np.linalg.solve(matrix, rhs)
    return float(math.exp(log_lambda)), float(p)


def draw_microstructure(rng: np.random.Generator, *, max_tries: int = 10000) -> Dict[str, float]:
    """Draw BV/TV, Tb.Th and Tb.Sp targets from the elderly ranges and solve lambda, p.

    Targets are drawn uniformly and independently; draws whose field parameters fall
    outside the admissible ranges (plate-dominant p in [0, 0.6], lambda in [0.8, 3.5] mm)
    are rejected, which induces the positive BV/TV-Tb.Th correlation real bone shows.
    The targets are what our BoneJ-exact morphometry reads at 0.052 mm
    (:data:`CALIBRATED_FITS`), like the study's micro-CT numbers.
    """
    for _ in range(max_tries):
        bv_tv = float(rng.uniform(*BV_TV_RANGE))
        tb_th = float(rng.uniform(*TB_TH_RANGE_MM))
        tb_sp = float(rng.uniform(*TB_SP_RANGE_MM))
        wavelength, p = solve_field_parameters(bv_tv, tb_th, tb_sp)
        if HOLE_FRACTION_RANGE[0] <= p <= HOLE_FRACTION_RANGE[1] and WAVELENGTH_RANGE_MM[0] <= wavelength <= WAVELENGTH_RANGE_MM[1]:
            return {
                "target_bv_tv": bv_tv,
                "target_tb_th_mm": tb_th,
                "target_tb_sp_mm": tb_sp,
                "wavelength_mm": wavelength,
                "hole_fraction": p,
            }
    raise InvalidParameterError("could not draw admissible microstructure targets")  # pragma: no cover


def draw_specimen_parameters(rng: np.random.Generator) -> Dict[str, Any]:
    """Draw every parameter of one specimen (a flat dict of plain floats/bools).

    Units are in the key names. Body geometry is in LPS mm with identity orientation:
    +x left, +y posterior (anterior edge at low y), +z superior.
    """
    params: Dict[str, Any] = draw_microstructure(rng)
    params.update(
        z_elongation=float(rng.uniform(0.75, 0.9)),  # field compressed in k_z: plates run vertically
        shell_relative_width=0.15,  # Gaussian shell sigma / radius of the field's spectrum
        # vertebral body (elliptic cylinder with a cortical shell and endplates)
        body_width_mm=float(rng.uniform(40.0, 50.0)),
        body_depth_mm=float(rng.uniform(30.0, 36.0)),
        body_height_mm=float(rng.uniform(24.0, 30.0)),
        cortical_thickness_mm=float(rng.uniform(0.2, 0.5)),
        endplate_thickness_mm=float(rng.uniform(0.3, 0.8)),
        posterior_notch=bool(rng.uniform() < 0.7),
        posterior_notch_radius_mm=float(rng.uniform(7.0, 10.0)),
        posterior_notch_depth_mm=float(rng.uniform(1.0, 3.0)),
        # where the specimen lies on the table (body centre, LPS mm)
        body_centre_lps_mm=[float(v) for v in rng.uniform(-5.0, 5.0, size=3)],
        # micro-CT (Inveon-like, HU-calibrated int16); levels are estimates. Noise and PSF are
        # those of an excised specimen scanned for the reference standard (long exposure,
        # no patient): bone/marrow CNR 15-25 and PSF FWHM 1.0-1.3 voxels [estimates]. With
        # SCIENCE.md's first estimate (CNR 6-15, FWHM 1.0-1.5) white marrow noise passed the
        # threshold as specks of "bone" that split the marrow spaces: Tb.Sp read ~22 % low
        # and did not follow the truth (R^2 0.10), which no real reference standard does.
        microct_bone_hu=float(rng.uniform(1800.0, 2600.0)),
        microct_marrow_hu=float(rng.uniform(-60.0, 30.0)),
        microct_bath_hu=float(rng.uniform(-10.0, 30.0)),
        microct_psf_fwhm_voxels=float(rng.uniform(1.0, 1.3)),
        microct_cnr=float(rng.uniform(15.0, 25.0)),
        microct_cupping=float(rng.uniform(0.02, 0.05)),
        # MDCT (SCIENCE.md section 5; blur and noise are estimates)
        mdct_tissue_hu=float(rng.uniform(1000.0, 1300.0)),
        mdct_marrow_hu=float(rng.uniform(-40.0, 10.0)),
        mdct_cortex_hu=float(rng.uniform(1300.0, 1800.0)),
        mdct_bath_hu=float(rng.uniform(-5.0, 15.0)),
        mdct_inplane_fwhm_mm=0.6,
        mdct_slice_fwhm_mm=0.67,
        mdct_noise_sd_hu=float(rng.uniform(30.0, 50.0)),
        mdct_rotation_deg=float(rng.uniform(1.0, 2.0)),
        mdct_rotation_axis=[float(v) for v in _unit_vector(rng)],
        mdct_shift_voxels=[float(v) for v in rng.uniform(-0.5, 0.5, size=3)],
    )
    return params


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)
