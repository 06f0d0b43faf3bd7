"""Standardized VOI placement (study Figure 5) on analytic phantoms and simulated vertebrae.

Truth: the VOI centre lies 12.5 mm posterior of the anterior cortex's outer surface on the
antero-posterior midline, at mid-height +- 2.5 mm (SCIENCE.md section 4).
"""

import numpy as np
import pytest
from scipy import ndimage

from MicroCTLikeLib.errors import InvalidParameterError, VOIError
from MicroCTLikeLib.voi import cylinder_mask, place_standard_vois
from MicroCTLikeLib.volume import Volume


def rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])

def body_phantom(*, spacing_xyz_mm=(0.3, 0.3, 0.4), body_rot_deg=4.0, grid_rot_deg=0.0, width=45.0, depth=33.0,
                 height=26.0, shell=0.4, notch=True, centre=(3.0, -2.0, 1.5), block=None, noise=30.0, seed=0,
                 blur_fwhm_mm=0.6):
    """Elliptic cylinder body (semi-axes width/2 along body LR, depth/2 along body AP) with a cortical
    shell, endplates, a posterior notch, rotated by body_rot_deg about z; interior 200, shell 1500,
    bath 0. Returns (volume, truth dict)."""
    rng = np.random.default_rng(seed)
    R = rot_z(body_rot_deg)            # body frame -> LPS
    c = np.array(centre, float)
    a, b = width / 2, depth / 2
    margin = 3.0
    if block is None:
        half = np.array([a + margin, b + margin, height / 2 + margin])
        lo, hi = c - half - 2, c + half + 2
    else:  # block = (half_width, (y0, y1) from anterior edge, half_height) in the body frame, axis-aligned in LPS
        hw, (y0, y1), hh = block
        ant = c + R @ np.array([0, -b, 0])
        lo = np.array([ant[0] - hw, ant[1] + y0, c[2] - hh])
        hi = np.array([ant[0] + hw, ant[1] + y1, c[2] + hh])
    D = rot_z(grid_rot_deg)
    sp = np.array(spacing_xyz_mm, float)
    # grid in its own rotated frame, covering [lo, hi] (shrunk when rotated)
    cen = (lo + hi) / 2
    n = np.floor((hi - lo) / sp * (1 - abs(np.sin(np.deg2rad(grid_rot_deg))) ) ).astype(int)
    origin = cen - D @ ((n - 1) / 2 * sp)
    vol = Volume(np.zeros(n[::-1], np.int16), tuple(sp), tuple(origin), D)
    zz, yy, xx = np.meshgrid(*[np.arange(k) for k in n[::-1]], indexing="ij")
    p = vol.index_zyx_to_lps(np.stack([zz, yy, xx], -1).astype(float))
    q = (p - c) @ R  # body frame coordinates
    r_ell = np.sqrt((q[..., 0] / a) ** 2 + (q[..., 1] / b) ** 2)
    inside = (r_ell <= 1) & (np.abs(q[..., 2]) <= height / 2)
    if notch:
        inside &= ~((q[..., 0] ** 2 + (q[..., 1] - b - 6.0) ** 2) < 9.0 ** 2)
    # shell = inside but within `shell` mm of the outside (approx with distance transform)
    dist = ndimage.distance_transform_edt(inside, sampling=vol.spacing_zyx_mm)
    img = np.where(inside, 200.0, 0.0)
    img[inside & (dist <= shell)] = 1500.0
    if blur_fwhm_mm:
        img = ndimage.gaussian_filter(img, sigma=blur_fwhm_mm / 2.355 / np.array(vol.spacing_zyx_mm))
    img += rng.normal(0, noise, img.shape)
    vol = vol.with_array(np.round(img).astype(np.int16))
    anterior_edge = c + R @ np.array([0, -b, 0])
    truth = {"anterior_edge": anterior_edge, "ap": R @ np.array([0, 1.0, 0]), "axis": np.array([0, 0, 1.0]),
             "centre_mid": anterior_edge + R @ np.array([0, 12.5, 0]), "lr": R @ np.array([1.0, 0, 0]), "centre": c}
    return vol, truth


def _centre_errors(placement, truth):
    centre = np.mean([voi.centre_lps_mm for voi in placement.vois], axis=0)
    diff = centre - truth["centre_mid"]
    return diff @ truth["ap"], diff @ truth["lr"], diff @ truth["axis"]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(body_rot_deg=4.0),  # rotated body, notch, axis-aligned grid
        dict(body_rot_deg=-3.0, grid_rot_deg=7.0, spacing_xyz_mm=(0.35, 0.3, 0.5)),  # oblique grid
        dict(body_rot_deg=0.0, notch=False, blur_fwhm_mm=0.0, noise=5.0),
    ],
)
def test_whole_body_phantom_vois_12_5_mm_behind_anterior_cortex_on_midline(kwargs):
    volume, truth = body_phantom(**kwargs)
    placement = place_standard_vois(volume)
    ap_err, lr_err, si_err = _centre_errors(placement, truth)
    assert abs(ap_err) < 0.3 and abs(lr_err) < 0.3 and abs(si_err) < 0.3
    body = placement.body
    angle = np.degrees(np.arccos(np.clip(np.dot(body.ap_direction_lps, truth["ap"]), -1, 1)))
    assert angle < 1.0 and not body.section_cut and not body.height_cut
    notch_mm = 3.0 if kwargs.get("notch", True) else 0.0  # the posterior notch cuts 3 mm off line A
    assert body.width_mm == pytest.approx(45.0, abs=1.5) and body.depth_mm == pytest.approx(33.0 - notch_mm, abs=1.0)
    superior, inferior = placement.vois
    assert (superior.name, inferior.name) == ("superior", "inferior")
    # the two VOIs span mid-plane .. +-5 mm: centres 5 mm apart along the axis, faces touching
    np.testing.assert_allclose(np.subtract(superior.centre_lps_mm, inferior.centre_lps_mm), [0, 0, 5.0], atol=1e-9)
    # both VOIs lie in the body interior: every voxel of them is inside the phantom's cancellous region
    for voi in placement.vois:
        assert volume.array[cylinder_mask(volume, voi)].mean() > 100


def test_block_around_the_vois_like_the_small_simulator_preset():
    volume, truth = body_phantom(body_rot_deg=0.0, block=(8.5, (-1.5, 21.5), 5.5), spacing_xyz_mm=(0.195, 0.195, 0.1))
    placement = place_standard_vois(volume)
    ap_err, lr_err, si_err = _centre_errors(placement, truth)
    assert abs(ap_err) < 0.3 and abs(lr_err) < 0.3 and abs(si_err) < 0.3
    assert placement.body.section_cut and placement.body.height_cut


def test_offset_and_size_parameters():
    volume, truth = body_phantom(body_rot_deg=2.0, seed=1)
    placement = place_standard_vois(volume, offset_mm=7.0, diameter_mm=10.0, height_mm=4.0, anterior_inset_mm=3.0)
    superior, inferior = placement.vois
    assert superior.diameter_mm == 10.0 and superior.height_mm == 4.0
    np.testing.assert_allclose(np.subtract(superior.centre_lps_mm, inferior.centre_lps_mm), [0, 0, 10.0], atol=1e-9)
    centre = 0.5 * (np.asarray(superior.centre_lps_mm) + np.asarray(inferior.centre_lps_mm))
    behind = (centre - truth["anterior_edge"]) @ truth["ap"]
    assert behind == pytest.approx(8.0, abs=0.3)  # 3 mm inset + 5 mm radius
    with pytest.raises(InvalidParameterError, match="offset_mm"):
        place_standard_vois(volume, offset_mm=1.0)


def test_no_body_gives_a_clear_error():
    rng = np.random.default_rng(0)
    noise = Volume(rng.normal(0, 10, (30, 40, 40)).astype(np.float32), (0.5, 0.5, 0.5))
    with pytest.raises(VOIError, match="vertebral body"):
        place_standard_vois(noise)
    with pytest.raises(VOIError, match="uniform"):
        place_standard_vois(Volume(np.zeros((20, 20, 20), np.int16), (0.5, 0.5, 0.5)))


def test_vois_outside_a_too_small_volume_are_reported():
    volume, _ = body_phantom(body_rot_deg=0.0, block=(8.5, (-1.5, 21.5), 3.5), spacing_xyz_mm=(0.3, 0.3, 0.3))
    with pytest.raises(VOIError, match="Superior edge"):
        place_standard_vois(volume)
    placement = place_standard_vois(volume, require_inside=False)
    assert len(placement.vois) == 2


@pytest.fixture(scope="module")
def simulated_specimen():
    simulate = pytest.importorskip("MicroCTLikeLib.simulate.specimen", reason="simulator not in this checkout")
    return simulate.simulate_specimen(3, preset="small")


@pytest.mark.parametrize("modality", ["microct", "mdct"])
def test_simulated_vertebra_small_preset(simulated_specimen, modality):
    volume = getattr(simulated_specimen, modality)
    body = simulated_specimen.truth["body"]
    placement = place_standard_vois(volume)
    centre = np.mean([voi.centre_lps_mm for voi in placement.vois], axis=0)
    expected = np.array([body["midline_x_mm"], body["anterior_edge_y_mm"] + 12.5, body["mid_height_z_mm"]])
    np.testing.assert_allclose(centre, expected, atol=0.3)
    assert abs(placement.body.anterior_edge_lps_mm[1] - body["anterior_edge_y_mm"]) < 0.3
