"""measure_trabecular / measure_binary: VOI policies, thresholds, errors, no input change."""

import json
import warnings

import numpy as np
import pytest
from scipy import ndimage

from MicroCTLikeLib.errors import InvalidParameterError, InvalidVolumeError, VOIError
from MicroCTLikeLib.morphometry import (
    auto_threshold,
    histogram_8bit,
    local_thickness_map,
    measure_binary,
    measure_trabecular,
    thickness_stats,
    to_8bit,
)

SPACING = (0.05, 0.05, 0.05)


def _sponge(shape=(24, 64, 64), seed=5, bv_tv=0.25):
    rng = np.random.default_rng(seed)
    field = np.abs(ndimage.gaussian_filter(rng.standard_normal(shape), 2.5))
    return field < np.quantile(field, bv_tv)  # bool bone, sheet-like


def _cylinder(shape, radius, centre_yx=None):
    nz, ny, nx = shape
    cy, cx = centre_yx if centre_yx is not None else ((ny - 1) / 2, (nx - 1) / 2)
    yy, xx = np.mgrid[:ny, :nx]
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    mask = np.zeros(shape, bool)
    mask[2:-2] = disk
    return mask


def test_whole_image_is_exactly_bonej_on_the_stack():
    bone = _sponge()
    binary = np.where(bone, 255, 0).astype(np.uint8)
    result = measure_binary(binary, spacing_xyz_mm=SPACING, return_maps=True)
    th = thickness_stats(local_thickness_map(binary, pixel_width_mm=0.05))
    sp = thickness_stats(local_thickness_map(binary, pixel_width_mm=0.05, inverse=True))
    assert result.tb_sp_policy == "whole" and result.margin_mm is None
    assert (result.tb_th_mm, result.tb_th_sd_mm, result.tb_th_max_mm, result.tb_th_n) == (th.mean, th.sd, th.max, th.n)
    assert (result.tb_sp_mm, result.tb_sp_n) == (sp.mean, sp.n)
    assert result.bv_tv == pytest.approx(bone.mean())
    assert result.tb_th_map_mm.shape == bone.shape and result.tb_th_map_mm.dtype == np.float32
    assert np.array_equal(np.isfinite(result.tb_th_map_mm), bone)


def test_margin_policy_equals_full_image_maps_averaged_in_the_voi_when_margin_covers_it():
    bone = _sponge(shape=(24, 80, 80))
    mask = _cylinder(bone.shape, 20)
    whole = measure_binary(bone, spacing_xyz_mm=SPACING, return_maps=True)
    margin = measure_binary(bone, spacing_xyz_mm=SPACING, voi_mask=mask, margin_mm=50 * 0.05, return_maps=True)
    assert margin.tb_sp_policy == "margin" and margin.margin_mm == pytest.approx(2.5)
    # a margin reaching the image border computes the same maps as the whole image
    assert margin.tb_th_mm == pytest.approx(thickness_stats(whole.tb_th_map_mm, mask=mask).mean, rel=1e-12)
    assert margin.tb_sp_mm == pytest.approx(thickness_stats(whole.tb_sp_map_mm, mask=mask).mean, rel=1e-12)
    assert margin.voi_voxel_count == mask.sum()
    assert margin.bv_tv == pytest.approx(bone[mask].mean())
    assert np.array_equal(np.isfinite(margin.tb_th_map_mm), bone & mask)


def test_policies_on_a_cylinder_voi():
    bone = _sponge(shape=(24, 80, 80), bv_tv=0.2)
    mask = _cylinder(bone.shape, 30)
    res = {p: measure_binary(bone, spacing_xyz_mm=SPACING, voi_mask=mask, tb_sp_policy=p)
           for p in ("margin", "clear_outside", "outside_bone")}
    for policy, r in res.items():
        assert r.tb_sp_policy == policy
        assert r.bv_tv == pytest.approx(bone[mask].mean())
    # BoneJ on a cleared stack counts the corners as marrow: larger Tb.Sp, more voxels
    assert res["clear_outside"].tb_sp_mm > 1.1 * res["margin"].tb_sp_mm
    assert res["clear_outside"].tb_sp_n > (~bone & mask).sum()
    # with the outside set to bone only VOI marrow is measured and spaces close at the wall
    assert res["outside_bone"].tb_sp_n == res["margin"].tb_sp_n == (~bone & mask).sum()
    assert res["outside_bone"].tb_sp_mm <= res["margin"].tb_sp_mm
    # the BoneJ-literal Tb.Th comes from the cleared stack: only bone inside the VOI
    assert res["clear_outside"].tb_th_n == res["outside_bone"].tb_th_n == (bone & mask).sum()


def test_clear_outside_is_literally_bonej_on_the_cropped_cleared_stack():
    bone = _sponge(shape=(20, 50, 50))
    mask = _cylinder(bone.shape, 18)
    z, y, x = (np.flatnonzero(mask.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
    box = np.s_[z[0]:z[-1] + 1, y[0]:y[-1] + 1, x[0]:x[-1] + 1]
    cleared = np.where(bone & mask, 255, 0).astype(np.uint8)[box]
    result = measure_binary(bone, spacing_xyz_mm=SPACING, voi_mask=mask, tb_sp_policy="clear_outside")
    sp = thickness_stats(local_thickness_map(cleared, pixel_width_mm=0.05, inverse=True))
    assert (result.tb_sp_mm, result.tb_sp_n) == (sp.mean, sp.n)


def test_grey_image_isodata_on_the_voi_histogram():
    rng = np.random.default_rng(3)
    bone = _sponge(shape=(20, 48, 48))
    grey = np.where(bone, 2400, 800) + rng.normal(0, 150, bone.shape)
    grey = np.clip(grey, 0, 65535).astype(np.uint16)
    mask = _cylinder(bone.shape, 20)
    grey_cleared = np.where(mask, grey, 0).astype(np.uint16)
    result = measure_trabecular(grey_cleared, spacing_xyz_mm=SPACING, voi_mask=mask)
    expected = auto_threshold(histogram_8bit(to_8bit(grey_cleared), mask=mask), method="isodata")
    assert result.threshold_method == "isodata" and result.threshold == expected
    # zeros outside the cylinder pull the whole-stack IsoData down: the VOI histogram avoids it
    whole_level = auto_threshold(histogram_8bit(to_8bit(grey_cleared)), method="isodata")
    assert whole_level < expected
    binary = to_8bit(grey_cleared) > expected
    assert result.bv_tv == pytest.approx(binary[mask].mean())


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32, np.uint8])
def test_grey_dtypes_give_the_binary_result_for_a_clean_two_level_image(dtype):
    bone = _sponge(shape=(16, 40, 40))
    grey = np.where(bone, 200, 20).astype(dtype)
    res = measure_trabecular(grey, spacing_xyz_mm=SPACING, threshold="otsu")
    ref = measure_binary(bone, spacing_xyz_mm=SPACING)
    assert (res.tb_th_mm, res.tb_sp_mm, res.bv_tv) == (ref.tb_th_mm, ref.tb_sp_mm, ref.bv_tv)


def test_0_255_volume_is_read_as_binary_and_fixed_threshold_is_applied():
    bone = _sponge(shape=(16, 40, 40))
    binary = np.where(bone, 255, 0).astype(np.uint8)
    res = measure_trabecular(binary, spacing_xyz_mm=SPACING)
    assert res.threshold_method == "binary" and res.bv_tv == pytest.approx(bone.mean())
    grey = np.where(bone, 180, 60).astype(np.uint8)
    fixed = measure_trabecular(grey, spacing_xyz_mm=SPACING, threshold=100)
    assert fixed.threshold_method == "fixed" and fixed.threshold == 100 and fixed.bv_tv == pytest.approx(bone.mean())


def test_otsu_maximises_between_class_variance():
    histogram = np.array(json.loads(
        (__import__("pathlib").Path(__file__).resolve().parents[1] / "Data/bonej/threshold/thresholds.json").read_text()
    )["cases"][0]["histogram"])
    level = auto_threshold(histogram, method="otsu")
    levels = np.arange(256)

    def between(t):
        w0, w1 = histogram[: t + 1].sum(), histogram[t + 1:].sum()
        if w0 == 0 or w1 == 0:
            return 0.0
        m0 = (levels[: t + 1] * histogram[: t + 1]).sum() / w0
        m1 = (levels[t + 1:] * histogram[t + 1:]).sum() / w1
        return w0 * w1 * (m0 - m1) ** 2

    scores = [between(t) for t in range(256)]
    assert level == int(np.argmax(scores))


def test_inputs_are_never_modified():
    rng = np.random.default_rng(9)
    grey = rng.integers(0, 4000, (12, 30, 30)).astype(np.uint16)
    mask = _cylinder(grey.shape, 12)
    g0, m0 = grey.copy(), mask.copy()
    for policy in ("margin", "clear_outside", "outside_bone"):
        measure_trabecular(grey, spacing_xyz_mm=SPACING, voi_mask=mask, tb_sp_policy=policy)
    np.testing.assert_array_equal(grey, g0)
    np.testing.assert_array_equal(mask, m0)


def test_anisotropic_spacing_warns_and_uses_the_pixel_width():
    bone = _sponge(shape=(16, 40, 40))
    with pytest.warns(UserWarning, match="pixel width only, 0.05 mm") as record:
        res = measure_binary(bone, spacing_xyz_mm=(0.05, 0.05, 0.1))
    assert record[0].filename == __file__  # points at the caller
    assert res.pixel_width_mm == 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        measure_binary(bone, spacing_xyz_mm=SPACING)


def test_as_dict_is_json_ready_and_names_the_policy():
    res = measure_binary(_sponge(shape=(16, 40, 40)), spacing_xyz_mm=SPACING, return_maps=True)
    data = json.loads(json.dumps(res.as_dict()))
    assert data["tb_sp_policy"] == "whole" and "tb_th_map_mm" not in data and data["tb_th_mm"] > 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"image": np.zeros((4, 4))}, InvalidVolumeError, "3-D"),
        ({"voi_mask": np.zeros((16, 40, 40), bool)}, VOIError, "no voxel"),
        ({"voi_mask": np.zeros((3, 3, 3), bool)}, VOIError, "shape"),
        ({"image": np.zeros((16, 40, 40), np.uint16)}, InvalidVolumeError, "no bone"),
        ({"spacing_xyz_mm": (0.05, 0, 0.05)}, InvalidParameterError, "spacing"),
        ({"threshold": "triangle"}, InvalidParameterError, "unknown threshold"),
        ({"threshold": 300}, InvalidParameterError, "8-bit level"),
        ({"tb_sp_policy": "nope", "voi_mask": "cyl"}, InvalidParameterError, "tb_sp_policy"),
        ({"margin_mm": -1, "voi_mask": "cyl"}, InvalidParameterError, "margin_mm"),
    ],
)
def test_errors(kwargs, error, message):
    bone = _sponge(shape=(16, 40, 40))
    args = {"image": np.where(bone, 2000, 100).astype(np.uint16), "spacing_xyz_mm": SPACING}
    args.update(kwargs)
    if isinstance(args.get("voi_mask"), str):
        args["voi_mask"] = _cylinder(bone.shape, 10)
    with pytest.raises(error, match=message):
        measure_trabecular(args.pop("image"), **args)


def test_a_0_1_label_image_gets_a_helpful_error():
    with pytest.raises(InvalidVolumeError, match="0/255"):
        measure_binary(_sponge(shape=(8, 20, 20)).astype(np.uint8), spacing_xyz_mm=SPACING)


def test_voi_without_bone_raises_voi_error():
    bone = _sponge(shape=(16, 40, 40))
    mask = np.zeros(bone.shape, bool)
    mask[3:5, 3:5, 3:5] = True
    bone[mask] = False
    with pytest.raises(VOIError, match="no bone"):
        measure_binary(bone, spacing_xyz_mm=SPACING, voi_mask=mask)
