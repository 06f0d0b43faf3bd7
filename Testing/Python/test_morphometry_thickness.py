"""Fast local thickness vs the slow literal reference, and geometric invariants."""

import numpy as np
import pytest
from scipy import ndimage

from MicroCTLikeLib.errors import InvalidParameterError, InvalidVolumeError
from MicroCTLikeLib.morphometry import local_thickness_map, thickness_stats
from MicroCTLikeLib.morphometry._lt_kernels import integer_sqrt_table, ridge_templates
from MicroCTLikeLib.morphometry.local_thickness_reference import (
    local_thickness_map_reference,
    template_brute_force,
)


def _random_binary(shape, seed, *, sigma, bv_tv):
    """Smoothed-noise structure (uint8 0/255), touching every border of the image."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return np.where(field > np.quantile(field, 1.0 - bv_tv), 255, 0).astype(np.uint8)


def _assert_same_map(a, b):
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


CASES = [
    ((12, 17, 23), 1, (1.5, 1.5, 1.5), 0.3),
    ((20, 9, 14), 2, (2.5, 1.0, 1.0), 0.5),   # anisotropic structure and shape
    ((7, 30, 11), 3, (1.0, 3.0, 1.5), 0.2),
    ((16, 16, 16), 4, (0.6, 0.6, 0.6), 0.5),  # near-noise: many tiny balls and ties
    ((1, 24, 24), 5, (0.01, 2.0, 2.0), 0.4),  # a single slice
    ((10, 12, 40), 6, (2.0, 2.0, 4.0), 0.15),
]


@pytest.mark.parametrize("shape, seed, sigma, bv_tv", CASES)
@pytest.mark.parametrize("inverse", [False, True], ids=["TbTh", "TbSp"])
def test_fast_equals_reference_on_seeded_random_volumes(shape, seed, sigma, bv_tv, inverse):
    vol = _random_binary(shape, seed, sigma=sigma, bv_tv=bv_tv)
    fast = local_thickness_map(vol, pixel_width_mm=0.052, inverse=inverse)
    slow = local_thickness_map_reference(vol, pixel_width_mm=0.052, inverse=inverse)
    _assert_same_map(fast, slow)


def test_fast_equals_reference_on_large_spaces_with_exact_ties():
    # large balls (R up to ~100) on a symmetric lattice: many equal radii side by side
    vol = np.zeros((24, 40, 40), np.uint8)
    vol[:, ::13, :] = 255
    vol[:, :, ::17] = 255
    vol[::11] = 255
    for inverse in (False, True):
        _assert_same_map(local_thickness_map(vol, inverse=inverse), local_thickness_map_reference(vol, inverse=inverse))


def test_single_thread_and_two_threads_agree():
    vol = _random_binary((30, 32, 28), 11, sigma=2.0, bv_tv=0.25)
    _assert_same_map(local_thickness_map(vol, inverse=True, threads=1), local_thickness_map(vol, inverse=True, threads=2))


def test_templates_equal_brute_force():
    fast = ridge_templates(400)
    for r_sq in range(1, 401):
        assert tuple(int(v) for v in fast[:, r_sq]) == template_brute_force(r_sq), r_sq


def test_integer_sqrt_table_is_exact():
    table = integer_sqrt_table(100_000)
    n = np.arange(100_001)
    assert np.all(table.astype(np.int64) ** 2 <= n) and np.all((table.astype(np.int64) + 1) ** 2 > n)


@pytest.mark.parametrize("t", range(1, 10))
def test_plate_of_t_voxels_reads_two_ceil_half_t(t):
    vol = np.zeros((t + 10, 9, 9), np.uint8)
    vol[5:5 + t] = 255
    th = local_thickness_map(vol)
    assert np.all(th[vol == 255] == 2 * np.ceil(t / 2))


@pytest.mark.parametrize("diameter", [3, 6, 9])
def test_sphere_values_are_twice_sqrt_integer(diameter):
    c = (diameter + 7) / 2.0 - 0.5
    z, y, x = np.mgrid[: diameter + 7, : diameter + 7, : diameter + 7]
    vol = np.where((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= (diameter / 2.0) ** 2, 255, 0).astype(np.uint8)
    values = np.unique(local_thickness_map(vol)[vol == 255])
    squares = (values.astype(np.float64) / 2) ** 2
    np.testing.assert_allclose(squares, np.round(squares), atol=1e-4)


def test_map_values_are_translation_invariant_away_from_the_border():
    obj = _random_binary((14, 15, 16), 21, sigma=1.5, bv_tv=0.35)
    a = np.zeros((20, 22, 24), np.uint8)
    b = np.zeros((23, 20, 27), np.uint8)
    a[2:16, 3:18, 4:20] = obj
    b[6:20, 2:17, 8:24] = obj
    th_a = local_thickness_map(a, pixel_width_mm=0.05)[2:16, 3:18, 4:20]
    th_b = local_thickness_map(b, pixel_width_mm=0.05)[6:20, 2:17, 8:24]
    _assert_same_map(th_a, th_b)


def test_border_is_not_background():
    # a plate touching the z border measures twice as thick there (BoneJ's border rule)
    vol = np.zeros((12, 8, 8), np.uint8)
    vol[:3] = 255
    assert np.all(local_thickness_map(vol)[:3] == 6.0)


def test_stats_are_imagej_sample_statistics():
    values = np.array([[[1.0, 2.0, np.nan, 4.0]]], dtype=np.float32)
    stats = thickness_stats(values)
    assert stats.n == 3 and stats.mean == pytest.approx(7 / 3) and stats.max == 4.0
    assert stats.sd == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert thickness_stats(np.full((2, 2, 2), np.nan, np.float32)).n == 0


def test_bool_and_0_255_inputs_agree_and_are_not_modified():
    vol = _random_binary((10, 12, 14), 31, sigma=1.2, bv_tv=0.3)
    before = vol.copy()
    _assert_same_map(local_thickness_map(vol), local_thickness_map(vol == 255))
    np.testing.assert_array_equal(vol, before)


@pytest.mark.parametrize(
    "array, kwargs, error, message",
    [
        (np.zeros((4, 4), np.uint8), {}, InvalidVolumeError, "3-D"),
        (np.zeros((0, 4, 4), np.uint8), {}, InvalidVolumeError, "empty"),
        (np.zeros((3, 4, 4), np.float32), {}, InvalidVolumeError, "binary"),
        (np.full((3, 4, 4), 255, np.uint8), {}, InvalidVolumeError, "fills the whole image"),
        (np.zeros((3, 4, 4), np.uint8), {"pixel_width_mm": 0}, InvalidParameterError, "pixel_width_mm"),
    ],
)
def test_errors(array, kwargs, error, message):
    with pytest.raises(error, match=message):
        local_thickness_map(array, **kwargs)


def test_no_phase_gives_an_all_nan_map():
    assert np.isnan(local_thickness_map(np.zeros((3, 4, 4), np.uint8))).all()


@pytest.mark.parametrize("seed", range(24))
def test_fast_equals_reference_on_random_shapes(seed):
    """Seeded random shapes (1..16 voxels per axis), structure scales and BV/TV."""
    rng = np.random.default_rng(1000 + seed)
    shape = tuple(int(n) for n in rng.integers(1, 17, 3))
    field = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(0.3, 3.0, 3))
    vol = np.where(field > np.quantile(field, rng.uniform(0.1, 0.9)), 255, 0).astype(np.uint8)
    compared = 0
    for inverse in (False, True):
        phase = (vol < 128) if inverse else (vol >= 128)
        if phase.all():  # no other phase: both implementations raise (tested in test_errors)
            continue
        _assert_same_map(local_thickness_map(vol, inverse=inverse), local_thickness_map_reference(vol, inverse=inverse))
        compared += 1
    assert compared >= 1
