"""Synthetic cohort simulator: reproducibility, truth, geometry and image physics.

Checks use independent truths: the study's published numbers, analytic statistics of
Gaussian fields, partial-volume (mass) conservation of blur, and physical overlay of the
MDCT with the known truth through each volume's own geometry.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from MicroCTLikeLib.errors import CancelledError, InvalidParameterError
from MicroCTLikeLib.simulate import (
    PRESETS,
    draw_specimen_parameters,
    simulate_specimen,
    solve_field_parameters,
    standard_voi_geometry,
    truth_metrics_hook,
)
from MicroCTLikeLib.simulate.body import BodyGeometry
from MicroCTLikeLib.simulate.fields import bandpass_field, quantile_threshold
from MicroCTLikeLib.simulate.mdct import FWHM_TO_SIGMA, rotation_matrix, shaped_noise
from MicroCTLikeLib.simulate.calibration import fit_power_law, measure_field_sample
from MicroCTLikeLib.simulate.parameters import CALIBRATED_FITS, SCIENCE_FITS, predicted_tb_sp_mm, predicted_tb_th_mm

DATA = Path(__file__).resolve().parents[1] / "Data" / "simulate"


@pytest.fixture(scope="module")
def tiny():
    return simulate_specimen(3, preset="tiny")


@pytest.fixture(scope="module")
def small():
    # seed 20 draws wide spacing (lambda 1.99 mm, Tb.Sp 1.28 mm, BV/TV 0.074): marrow far enough from bone
    # (> 0.6 mm, ~2.4 sigma of the MDCT blur) to read unblurred marrow HU
    return simulate_specimen(20, preset="small")


# ------------------------------------------------------------------ parameters
def test_science_fits_recover_study_field_parameters():
    # SCIENCE.md: the study's means (0.180, 0.218 mm, 0.934 mm) came from lambda 1.94 mm, p 0.14
    wavelength, p = solve_field_parameters(0.180, 0.218, 0.934, fits=SCIENCE_FITS)
    assert wavelength == pytest.approx(1.94, abs=0.02)
    assert p == pytest.approx(0.14, abs=0.02)
    assert predicted_tb_th_mm(wavelength, 0.180, p, fits=SCIENCE_FITS) == pytest.approx(0.218, rel=1e-9)
    assert predicted_tb_sp_mm(wavelength, 0.180, p, fits=SCIENCE_FITS) == pytest.approx(0.934, rel=1e-9)


def test_fit_power_law_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    rows = [
        {"wavelength_mm": lam, "bv_tv": b, "hole_fraction": p, "y": 0.5 * lam**0.8 * b**-0.2 * np.exp(1.1 * p)}
        for lam, b, p in zip(rng.uniform(1, 3, 12), rng.uniform(0.05, 0.2, 12), rng.uniform(0, 0.6, 12))
    ]
    coef, r2 = fit_power_law(rows, "y")
    assert np.allclose(coef, (0.5, 0.8, -0.2, 1.1)) and r2 == pytest.approx(1.0)


def test_calibrated_fits_are_the_fit_of_the_stored_measurements():
    samples = json.loads((DATA / "calibration_samples.json").read_text())["samples"]
    for key in ("tb_th_mm", "tb_sp_mm"):
        coef, r2 = fit_power_law(samples, key)
        assert np.allclose(coef, CALIBRATED_FITS[key], atol=6e-4)
        assert r2 > 0.99


def test_simulated_microstructure_measures_at_its_targets():
    # end to end with the BoneJ-exact engine: solve (lambda, p) for targets, simulate, measure
    bv_tv, tb_th, tb_sp = 0.15, 0.17, 0.85
    wavelength, p = solve_field_parameters(bv_tv, tb_th, tb_sp)
    measured = measure_field_sample(wavelength, bv_tv, p, seed=7, size_voxels=144)
    assert measured["bv_tv"] == pytest.approx(bv_tv, abs=1e-4)
    assert measured["tb_th_mm"] == pytest.approx(tb_th, rel=0.10)
    assert measured["tb_sp_mm"] == pytest.approx(tb_sp, rel=0.10)


def test_drawn_parameters_lie_in_the_specified_ranges():
    for seed in range(40):
        params = draw_specimen_parameters(np.random.default_rng(seed))
        assert 0.05 <= params["target_bv_tv"] <= 0.25
        assert 0.10 <= params["target_tb_th_mm"] <= 0.22
        assert 0.7 <= params["target_tb_sp_mm"] <= 1.3
        assert 0.0 <= params["hole_fraction"] <= 0.6
        assert 40 <= params["body_width_mm"] <= 50 and 30 <= params["body_depth_mm"] <= 36
        assert 24 <= params["body_height_mm"] <= 30
        assert 0.2 <= params["cortical_thickness_mm"] <= 0.5 and 0.3 <= params["endplate_thickness_mm"] <= 0.8
        assert 1000 <= params["mdct_tissue_hu"] <= 1300 and -40 <= params["mdct_marrow_hu"] <= 10
        assert 1300 <= params["mdct_cortex_hu"] <= 1800 and 1 <= params["mdct_rotation_deg"] <= 2
        assert 15 <= params["microct_cnr"] <= 25 and 1.0 <= params["microct_psf_fwhm_voxels"] <= 1.3


def test_bad_seed_and_preset_are_refused():
    with pytest.raises(InvalidParameterError, match="seed"):
        simulate_specimen(-1, preset="tiny")
    with pytest.raises(InvalidParameterError, match="unknown preset 'huge'.*small"):
        simulate_specimen(1, preset="huge")


# ------------------------------------------------------------------ fields
def test_bandpass_field_is_normalised_with_spectral_peak_at_one_over_lambda():
    voxel, wavelength = 0.1, 1.6
    field = bandpass_field((64, 64, 64), voxel, np.random.default_rng(0), wavelength_mm=wavelength)
    assert field.dtype == np.float32
    assert abs(float(field.mean())) < 1e-5 and float(field.std()) == pytest.approx(1.0, abs=1e-4)
    power = np.abs(np.fft.fftn(field)) ** 2
    f = np.fft.fftfreq(64, d=voxel)
    k = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    bins = np.arange(0, k.max(), 1 / (64 * voxel))
    which = np.digitize(k.ravel(), bins)
    radial = np.bincount(which, power.ravel()) / np.maximum(np.bincount(which), 1)
    k_peak = bins[np.argmax(radial) - 1] + 0.5 / (64 * voxel)
    assert k_peak == pytest.approx(1 / wavelength, rel=0.15)


def test_same_rng_gives_same_field_and_elongation_stretches_along_z():
    a = bandpass_field((48, 48, 48), 0.1, np.random.default_rng(5), wavelength_mm=1.2, z_elongation=0.7)
    b = bandpass_field((48, 48, 48), 0.1, np.random.default_rng(5), wavelength_mm=1.2, z_elongation=0.7)
    assert a.tobytes() == b.tobytes()
    # correlation between neighbours is higher along the elongated z axis than along x
    corr_z = np.corrcoef(a[1:].ravel(), a[:-1].ravel())[0, 1]
    corr_x = np.corrcoef(a[..., 1:].ravel(), a[..., :-1].ravel())[0, 1]
    assert corr_z > corr_x


@pytest.mark.parametrize("k", [1, 17, 5000, 9999, 10000])
def test_quantile_threshold_is_an_exact_order_statistic(k):
    rng = np.random.default_rng(k)
    chunks = [rng.standard_normal(n).astype(np.float32) for n in (3000, 1, 4000, 2999)]
    t = quantile_threshold(lambda: iter(chunks), k)
    assert sum(int((c < t).sum()) for c in chunks) == k


# ------------------------------------------------------------------ reproducibility
def test_same_seed_identical_bytes_different_seed_differs(tiny):
    again = simulate_specimen(3, preset="tiny")
    other = simulate_specimen(4, preset="tiny")
    for name in ("microct", "mdct", "truth_binary"):
        a, b, c = getattr(tiny, name), getattr(again, name), getattr(other, name)
        assert a.array.tobytes() == b.array.tobytes()
        assert a.same_geometry(b, tol_mm=0)
        assert a.array.shape != c.array.shape or a.array.tobytes() != c.array.tobytes()
    assert tiny.truth == again.truth
    assert tiny.truth["parameters"] != other.truth["parameters"]


# ------------------------------------------------------------------ truth
@pytest.mark.parametrize("which", ["tiny", "small"])
def test_truth_bv_tv_matches_target(which, request):
    specimen = request.getfixturevalue(which)
    target = specimen.truth["parameters"]["target_bv_tv"]
    assert abs(specimen.truth["achieved_bv_tv"] - target) < 0.005
    # recount from the written binary over the cancellous core of the known body
    truth = specimen.truth_binary
    assert truth.array.dtype == np.uint8 and set(np.unique(truth.array)) <= {0, 255}
    body = BodyGeometry(**{k: v for k, v in specimen.truth["body"].items() if k in BodyGeometry.__dataclass_fields__})
    nz, ny, nx = truth.shape_zyx
    ox, oy, oz = truth.origin_lps_mm
    v = truth.spacing_xyz_mm[0]
    sdf_xy = body.sdf_xy(ox + v * np.arange(nx)[None, :], oy + v * np.arange(ny)[:, None])
    core = body.body_and_cancellous_sdf(sdf_xy, body.sdf_z(oz + v * np.arange(nz)))[1] >= 0
    recount = float((truth.array[core] >= 128).mean())
    assert abs(recount - target) < 0.005


def test_small_preset_holds_both_standard_vois_in_both_volumes(small):
    vois = standard_voi_geometry(small.truth["body"])
    assert [voi["name"] for voi in vois] == ["superior", "inferior"]
    body = small.truth["body"]
    for voi in vois:
        assert voi["centre_lps_mm"][1] == pytest.approx(body["anterior_edge_y_mm"] + 12.5)
        assert voi["centre_lps_mm"][0] == pytest.approx(body["midline_x_mm"])
        # points on the cylinder's rim, top and bottom, must be inside both grids
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        cx, cy, cz = voi["centre_lps_mm"]
        rim = np.array([[cx + 7.5 * np.cos(a), cy + 7.5 * np.sin(a), cz + dz] for a in angles for dz in (-2.5, 2.5)])
        for volume in (small.microct, small.mdct):
            index = volume.lps_to_index_zyx(rim)
            assert np.all(index >= -0.5) and np.all(index <= np.array(volume.shape_zyx) - 0.5)
    metrics = truth_metrics_hook(small)
    target = small.truth["parameters"]["target_bv_tv"]
    params = small.truth["parameters"]
    for entry in metrics["vois"]:
        assert entry["complete"]
        assert abs(entry["bv_tv"] - target) < 0.03  # a 15 x 5 mm sample of the stationary field
        # the BoneJ-exact truth metrics land near the targets the field was built for
        assert entry["tb_th_mm"] == pytest.approx(params["target_tb_th_mm"], rel=0.15)
        assert entry["tb_sp_mm"] == pytest.approx(params["target_tb_sp_mm"], rel=0.2)
        assert entry["tb_sp_policy"] == "margin"


# ------------------------------------------------------------------ orientation
def test_anterior_is_low_y_and_cortex_sits_at_the_anterior_edge(small):
    microct, body, params = small.microct, small.truth["body"], small.truth["parameters"]
    assert np.allclose(microct.direction_lps, np.eye(3))
    assert microct.metadata["orientation"]["anterior_direction_lps"] == [0.0, -1.0, 0.0]
    assert microct.metadata["orientation"]["superior_direction_lps"] == [0.0, 0.0, 1.0]
    # profile along the AP midline at mid-height: bath first (low y), then the cortex peak
    y = np.arange(body["anterior_edge_y_mm"] - 1.2, body["anterior_edge_y_mm"] + 1.5, 0.026)
    points = np.stack([np.full_like(y, body["midline_x_mm"]), y, np.full_like(y, body["mid_height_z_mm"])], axis=1)
    truth_profile = ndimage.map_coordinates(small.truth_binary.array, small.truth_binary.lps_to_index_zyx(points).T, order=0)
    assert not truth_profile[y < body["anterior_edge_y_mm"] - 0.1].any()
    cortex = (y > body["anterior_edge_y_mm"] + 0.05) & (y < body["anterior_edge_y_mm"] + params["cortical_thickness_mm"] - 0.05)
    assert truth_profile[cortex].all()
    mdct = small.mdct
    hu = ndimage.map_coordinates(mdct.array.astype(float), mdct.lps_to_index_zyx(points).T, order=1)
    peak_y = y[np.argmax(np.where(y < body["anterior_edge_y_mm"] + 1.0, hu, -np.inf))]
    assert abs(peak_y - (body["anterior_edge_y_mm"] + params["cortical_thickness_mm"] / 2)) < 0.25


# ------------------------------------------------------------------ micro-CT
def test_microct_levels_and_cnr(small):
    microct, truth, params = small.microct, small.truth_binary, small.truth["parameters"]
    assert microct.array.dtype == np.int16 and microct.spacing_xyz_mm == (0.052, 0.052, 0.052)
    bone = truth.array >= 128
    deep_bone = ndimage.binary_erosion(bone, iterations=2)
    deep_marrow = ndimage.binary_erosion(~bone, iterations=4)
    deep_marrow[:, : int(2.5 / 0.052)] = False  # leave out the bath in front of the cortex
    bone_hu, marrow_hu = params["microct_bone_hu"], params["microct_marrow_hu"]
    cup = params["microct_cupping"]
    # cupping lowers attenuation (HU + 1000) by at most `cup` at the scanner axis
    assert (bone_hu + 1000) * (1 - cup) - 1000 - 10 <= microct.array[deep_bone].mean() <= bone_hu + 10
    assert (marrow_hu + 1000) * (1 - cup) - 1000 - 10 <= microct.array[deep_marrow].mean() <= marrow_hu + 10
    measured_cnr = (microct.array[deep_bone].mean() - microct.array[deep_marrow].mean()) / microct.array[deep_marrow].std()
    assert 14 <= measured_cnr <= 26
    assert measured_cnr == pytest.approx(params["microct_cnr"], rel=0.12)


# ------------------------------------------------------------------ MDCT
def test_mdct_grid_type_and_hu_ranges(small):
    mdct, truth, params, body = small.mdct, small.truth_binary, small.truth["parameters"], small.truth["body"]
    assert mdct.array.dtype == np.int16
    assert mdct.spacing_xyz_mm == pytest.approx((0.195, 0.195, 0.1))
    angle = np.degrees(np.arccos((np.trace(mdct.direction_lps) - 1) / 2))
    assert angle == pytest.approx(params["mdct_rotation_deg"], abs=1e-6) and 1.0 <= angle <= 2.0
    index = np.indices(mdct.shape_zyx).reshape(3, -1).T
    points = mdct.index_zyx_to_lps(index)
    hu = mdct.array.reshape(-1).astype(float)
    near = np.rint(truth.lps_to_index_zyx(points)).astype(int)
    assert np.all(near >= 0) and np.all(near < np.array(truth.shape_zyx))  # MDCT lies inside the fine block
    distance_mm = ndimage.distance_transform_edt(truth.array < 128, sampling=truth.spacing_zyx_mm)[tuple(near.T)]
    y = points[:, 1]
    marrow = (distance_mm > 0.6) & (y > body["anterior_edge_y_mm"] + 1.0)
    assert marrow.sum() > 100
    assert -60 <= hu[marrow].mean() <= 40
    assert hu[marrow].mean() == pytest.approx(params["mdct_marrow_hu"], abs=15)
    bath = y < body["anterior_edge_y_mm"] - 0.8
    assert hu[bath].mean() == pytest.approx(params["mdct_bath_hu"], abs=10)
    # partial-volume conservation: blur keeps the mean HU of a large region
    region = y > body["anterior_edge_y_mm"] + 2.0
    bv_tv = float((truth.array[tuple(near[region].T)] >= 128).mean())
    expected = params["mdct_marrow_hu"] + bv_tv * (params["mdct_tissue_hu"] - params["mdct_marrow_hu"])
    assert hu[region].mean() == pytest.approx(expected, abs=10)
    assert 1000 <= params["mdct_tissue_hu"] <= 1300


def test_mdct_overlays_truth_in_physical_space(small):
    mdct, truth = small.mdct, small.truth_binary
    s_xy = 0.6 * FWHM_TO_SIGMA / 0.052
    s_z = 0.67 * FWHM_TO_SIGMA / 0.052
    blurred = ndimage.gaussian_filter(truth.array.astype(np.float32), sigma=(s_z, s_xy, s_xy))
    index = np.indices(mdct.shape_zyx).reshape(3, -1).T
    points = mdct.index_zyx_to_lps(index)
    hu = mdct.array.reshape(-1).astype(float)

    def corr(shift_mm):
        where = truth.lps_to_index_zyx(points + np.asarray(shift_mm))
        return np.corrcoef(ndimage.map_coordinates(blurred, where.T, order=1, mode="nearest"), hu)[0, 1]

    aligned = corr((0, 0, 0))
    assert aligned > 0.9
    # the match peaks where the geometry says: any 0.2 mm displacement is worse
    for axis in range(3):
        for sign in (-1, 1):
            shift = np.zeros(3)
            shift[axis] = 0.2 * sign
            assert corr(shift) < aligned - 0.005
    # same body centre in both: the truth centre maps inside both volumes at the same LPS point
    centre = np.array(small.truth["body"]["centre_lps_mm"])
    assert np.allclose(mdct.index_zyx_to_lps(mdct.lps_to_index_zyx(centre)), centre)


def test_mdct_noise_has_requested_sd_and_slice_correlation():
    noise = shaped_noise((96, 64, 64), np.random.default_rng(1), sd_hu=40.0, inplane_fwhm_mm=0.6, slice_fwhm_mm=0.67)
    assert float(noise.std()) == pytest.approx(40.0, rel=1e-4)
    # through-plane: Gaussian amplitude filter of SD s => correlation exp(-d^2 / (4 s^2)) at lag d
    s_z = 0.67 * FWHM_TO_SIGMA
    lag1 = np.corrcoef(noise[1:].ravel(), noise[:-1].ravel())[0, 1]
    assert lag1 == pytest.approx(np.exp(-(0.1**2) / (4 * s_z**2)), abs=0.02)
    # in-plane: the ramp removes the mean of every slice (no power at f = 0)
    assert np.abs(noise.mean(axis=(1, 2))).max() < 1e-3


def test_rotation_matrix_is_a_rotation_by_the_angle():
    r = rotation_matrix(np.array([1.0, 2.0, 2.0]), 1.5)
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
    assert np.allclose(r @ np.array([1.0, 2.0, 2.0]), [1.0, 2.0, 2.0])
    assert np.degrees(np.arccos((np.trace(r) - 1) / 2)) == pytest.approx(1.5)


def test_cancel_stops_simulation():
    class Always:
        def is_set(self):
            return True

    with pytest.raises(CancelledError):
        simulate_specimen(1, preset="tiny", cancel=Always())


def test_presets_are_described():
    assert set(PRESETS) == {"tiny", "small", "full"}
    assert PRESETS["full"].block_half_height_mm == 12.5  # +-12.5 mm about mid-height, as in the study
