"""Measurement recipes for comparing volumes against a truth: the marrow/bone midpoint
threshold and the common isotropic grid (MicroCTLikeLib.measurement.resample_isotropic)."""

import numpy as np
import pytest

from MicroCTLikeLib.errors import InvalidParameterError
from MicroCTLikeLib.measurement import measure_in_voi, resample_isotropic
from MicroCTLikeLib.morphometry import measure_trabecular
from MicroCTLikeLib.morphometry.thresholds import auto_threshold, isodata_1_53t, midpoint
from MicroCTLikeLib.volume import Volume


def _two_class_histogram(bone_fraction=0.1, marrow=60, bone=180, sd=6.0, partial_fraction=0.3, n=200_000):
    """Marrow and bone peaks plus a flat band of partial-volume voxels between them."""
    rng = np.random.default_rng(0)
    n_bone = int(n * bone_fraction)
    n_partial = int(n_bone * partial_fraction)
    values = np.concatenate([rng.normal(marrow, sd, n - n_bone - n_partial), rng.normal(bone, sd, n_bone),
                             rng.uniform(marrow, bone, n_partial)])
    return np.bincount(np.clip(np.rint(values), 0, 255).astype(int), minlength=256)


@pytest.mark.parametrize("bone_fraction", [0.05, 0.1, 0.25])
def test_midpoint_sits_half_way_between_the_peaks_where_isodata_sits_low(bone_fraction):
    histogram = _two_class_histogram(bone_fraction)
    level = midpoint(histogram)
    assert abs(level - 120) <= 4
    assert isodata_1_53t(histogram) < level
    assert auto_threshold(histogram, method="midpoint") == level


def test_midpoint_of_a_histogram_without_bone_is_isodata():
    histogram = np.zeros(256, dtype=np.int64)
    histogram[50] = 1000
    assert midpoint(histogram) == isodata_1_53t(histogram)


def _plate_volume(voxel_mm, thickness_mm, shape_zyx=(16, 16, None), extent_mm=4.16, grey=True):
    """A plate normal to x (centre at extent/2): anti-aliased occupancy x 1000 (grey) or voxel centres inside (bool)."""
    nx = int(round(extent_mm / voxel_mm))
    edges = np.arange(nx + 1) * voxel_mm
    centre = extent_mm / 2 + 0.01  # no plate edge on a voxel centre of either grid
    low, high = centre - thickness_mm / 2, centre + thickness_mm / 2
    if grey:
        profile = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None) / voxel_mm * 1000.0
    else:
        centres = edges[:-1] + voxel_mm / 2
        profile = (centres > low) & (centres < high)
    nz, ny = shape_zyx[0], shape_zyx[1]
    array = np.broadcast_to(profile, (nz, ny, nx)).copy()
    return Volume(array.astype(np.float32) if grey else array, (voxel_mm,) * 3, (0.0, 0.0, 0.0), np.eye(3))


def test_common_grid_measures_a_coarse_image_as_the_fine_binary_truth_reads():
    """A 0.26 mm plate imaged at 0.104 mm reads what the binary plate reads at 0.052 mm
    only when measured on the common 0.052 mm grid."""
    truth = _plate_volume(0.052, 0.26, grey=False)
    reference = measure_trabecular(truth.array, spacing_xyz_mm=truth.spacing_xyz_mm).tb_th_mm
    coarse = _plate_volume(0.104, 0.26)
    native = measure_trabecular(coarse.array, spacing_xyz_mm=coarse.spacing_xyz_mm, threshold="midpoint").tb_th_mm
    fine = resample_isotropic(coarse, 0.052)
    common = measure_trabecular(fine.array, spacing_xyz_mm=fine.spacing_xyz_mm, threshold="midpoint").tb_th_mm
    assert common == pytest.approx(reference, abs=1e-6)
    assert abs(native - reference) > 0.05


def test_resample_isotropic_keeps_the_field_of_view_and_direction():
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    volume = Volume(np.zeros((10, 20, 30), dtype=np.int16), (0.2, 0.2, 0.1), (5.0, -3.0, 2.0), rotation)
    fine = resample_isotropic(volume, 0.05)
    assert fine.spacing_xyz_mm == (0.05, 0.05, 0.05)
    assert fine.shape_zyx == (20, 80, 120)
    np.testing.assert_allclose(fine.direction_lps, rotation)
    # outer corner (half a voxel before the first centre) is the same point
    corner_old = volume.index_zyx_to_lps(np.array([-0.5, -0.5, -0.5]))
    corner_new = fine.index_zyx_to_lps(np.array([-0.5, -0.5, -0.5]))
    np.testing.assert_allclose(corner_new, corner_old, atol=1e-9)
    assert resample_isotropic(fine, 0.05) is fine


def test_resample_refuses_binary_volumes_and_bad_sizes():
    binary = Volume(np.zeros((4, 4, 4), dtype=np.uint8), (0.1, 0.1, 0.1), (0, 0, 0), np.eye(3))
    with pytest.raises(InvalidParameterError, match="binary"):
        resample_isotropic(binary, 0.05)
    with pytest.raises(InvalidParameterError, match="positive"):
        resample_isotropic(binary, 0.0)
