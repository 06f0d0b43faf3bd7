"""Cylinder VOI geometry and voxel masks against analytic truth (pi r^2 h, brute force)."""

import math

import numpy as np
import pytest

from MicroCTLikeLib.errors import VOIError
from MicroCTLikeLib.voi import CylinderVOI, crop_to_voi, cylinder_mask, cylinder_occupancy, voi_slices
from MicroCTLikeLib.volume import Volume


def _rotation(axis, angle_deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _tilted_axis(tilt_deg, azimuth_deg=17.0):
    t, p = np.deg2rad(tilt_deg), np.deg2rad(azimuth_deg)
    return (np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t))


def _volume(spacing_xyz_mm, extent_mm=21.0, direction=None):
    n = np.round(extent_mm / np.array(spacing_xyz_mm)).astype(int)
    direction = _rotation((0.3, -0.2, 1.0), 23.0) if direction is None else direction
    return Volume(np.zeros(n[::-1], np.uint8), spacing_xyz_mm, (-10.0, 4.0, -7.5), direction)


@pytest.mark.parametrize("tilt_deg", [0.0, 8.0, 25.0, 45.0])
def test_voxel_count_matches_analytic_volume_fine_grid(tilt_deg):
    volume = _volume((0.195, 0.195, 0.1))
    voi = CylinderVOI(tuple(volume.centre_lps_mm() + [0.07, -0.11, 0.03]), _tilted_axis(tilt_deg))
    mask = cylinder_mask(volume, voi)
    volume_mm3 = mask.sum() * np.prod(volume.spacing_xyz_mm)
    assert volume_mm3 == pytest.approx(math.pi * 7.5**2 * 5.0, rel=0.01)


@pytest.mark.parametrize("tilt_deg", [0.0, 10.0, 30.0, 60.0])
def test_coarse_anisotropic_grid_occupancy_and_mean_count_are_unbiased(tilt_deg):
    # 0.7 mm slices quantise a 5 mm height badly for one placement; the sub-voxel occupancy and
    # the voxel count averaged over random sub-voxel positions must still give pi r^2 h.
    volume = _volume((0.3, 0.5, 0.7))
    axis = _tilted_axis(tilt_deg)
    voi = CylinderVOI(tuple(volume.centre_lps_mm()), axis)
    occupancy = cylinder_occupancy(volume, voi, supersample=8)
    assert occupancy.min() >= 0 and occupancy.max() <= 1
    assert occupancy.sum() * np.prod(volume.spacing_xyz_mm) == pytest.approx(voi.volume_mm3, rel=0.01)
    rng = np.random.default_rng(7)
    counts = [
        cylinder_mask(volume, voi.translated(rng.uniform(-0.7, 0.7, 3))).sum() for _ in range(24)
    ]
    assert np.mean(counts) * np.prod(volume.spacing_xyz_mm) == pytest.approx(voi.volume_mm3, rel=0.01)


def test_mask_equals_brute_force_inside_test_on_every_voxel_centre():
    volume = _volume((0.6, 0.45, 0.8), extent_mm=20.0)
    voi = CylinderVOI(tuple(volume.centre_lps_mm() + [0.3, 0.1, -0.2]), _tilted_axis(33.0, 120.0), 9.0, 4.0)
    zz, yy, xx = np.indices(volume.shape_zyx)
    centres = volume.index_zyx_to_lps(np.stack([zz, yy, xx], -1).astype(float))
    np.testing.assert_array_equal(cylinder_mask(volume, voi), voi.contains(centres))


def test_contains_and_analytic_properties():
    voi = CylinderVOI((1.0, 2.0, 3.0), (0.0, 0.0, 2.0), 10.0, 4.0, name="a")
    assert voi.axis_lps == (0.0, 0.0, 1.0)
    assert voi.volume_mm3 == pytest.approx(math.pi * 25 * 4)
    inside = voi.contains(np.array([[1, 2, 3], [5.9, 2, 4.9], [1, 7.01, 3], [1, 2, 5.01]], float))
    np.testing.assert_array_equal(inside, [True, True, False, False])


@pytest.mark.parametrize("tilt_deg", [0.0, 20.0, 70.0])
def test_bounds_are_exact_extremes_of_the_surface(tilt_deg):
    voi = CylinderVOI((3.0, -2.0, 5.0), _tilted_axis(tilt_deg, 40.0), 15.0, 5.0)
    frame = voi.frame_lps()
    angles = np.linspace(0, 2 * np.pi, 20001)
    rim = np.stack([np.cos(angles), np.sin(angles)], 1) * voi.radius_mm
    points = np.concatenate(
        [rim @ frame[:, :2].T + np.asarray(voi.centre_lps_mm) + h * np.asarray(voi.axis_lps) for h in (-2.5, 2.5)]
    )
    np.testing.assert_allclose(voi.bounds_lps(), [points.min(0), points.max(0)], atol=1e-6)
    corners = voi.corners_lps()
    assert np.all(corners.min(0) <= points.min(0) + 1e-9) and np.all(corners.max(0) >= points.max(0) - 1e-9)


@pytest.mark.parametrize("world", ["lps", "ras"])
def test_object_to_world_round_trip_and_roi_frame(world):
    voi = CylinderVOI((4.0, -6.0, 12.0), _tilted_axis(12.0, 200.0), 15.0, 5.0, name="s")
    matrix = voi.object_to_world(world=world)
    rotation = matrix[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    flip = np.diag([-1.0, -1.0, 1.0]) if world == "ras" else np.eye(3)
    np.testing.assert_allclose(matrix[:3, 2], flip @ np.asarray(voi.axis_lps))  # local z = axis
    np.testing.assert_allclose(matrix[:3, 3], flip @ np.asarray(voi.centre_lps_mm))
    back = CylinderVOI.from_object_to_world(matrix, voi.roi_size_mm(), world=world, name="s")
    np.testing.assert_allclose(back.centre_lps_mm, voi.centre_lps_mm, atol=1e-12)
    np.testing.assert_allclose(back.axis_lps, voi.axis_lps, atol=1e-12)
    assert (back.diameter_mm, back.height_mm) == (15.0, 5.0)
    # the ROI box corners are the local (+-r, +-r, +-h/2) mapped by the matrix
    local = np.array([7.5, -7.5, 2.5, 1.0])
    world_point = flip @ (matrix @ local)[:3]
    assert np.min(np.linalg.norm(voi.corners_lps() - world_point, axis=1)) < 1e-9


def test_untilted_voi_has_identity_frame_and_non_square_roi_is_refused():
    np.testing.assert_allclose(CylinderVOI((0, 0, 0)).object_to_world()[:3, :3], np.eye(3))
    with pytest.raises(VOIError, match="not square"):
        CylinderVOI.from_object_to_world(np.eye(4), (15.0, 10.0, 5.0))


def test_dict_round_trip_and_ras_input():
    voi = CylinderVOI((1.5, -2.5, 3.0), (0.1, 0.0, 1.0), 12.0, 4.0, name="superior")
    data = voi.to_dict()
    assert data["centre_ras_mm"] == [-1.5, 2.5, 3.0]
    back = CylinderVOI.from_dict(data)
    np.testing.assert_allclose(back.centre_lps_mm, voi.centre_lps_mm)
    np.testing.assert_allclose(back.axis_lps, voi.axis_lps, atol=1e-8)
    assert (back.diameter_mm, back.height_mm, back.name) == (12.0, 4.0, "superior")
    from_ras = CylinderVOI.from_dict({"centre_ras_mm": [-1.5, 2.5, 3.0], "diameter_mm": 12.0})
    assert from_ras.centre_lps_mm == (1.5, -2.5, 3.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"axis_lps": (0, 0, 0)}, "axis"),
        ({"diameter_mm": 0.0}, "diameter"),
        ({"height_mm": float("nan")}, "height"),
        ({"centre_lps_mm": (0, 0)}, "centre"),
    ],
)
def test_bad_cylinders_are_refused(kwargs, message):
    args = {"centre_lps_mm": (0, 0, 0), **kwargs}
    with pytest.raises(VOIError, match=message):
        CylinderVOI(**args)


def test_voi_leaving_the_volume_names_side_and_distance():
    # identity direction: low x = Right side, high z = Superior side
    volume = Volume(np.zeros((40, 60, 60), np.uint8), (0.5, 0.5, 0.25), (0.0, 0.0, 0.0))
    voi = CylinderVOI((6.5, 15.0, 4.0), (0, 0, 1), 15.0, 5.0)  # x from -1.0 mm; extent starts at -0.25
    with pytest.raises(VOIError, match=r"0\.75 mm beyond the Right edge"):
        cylinder_mask(volume, voi)
    voi = CylinderVOI((15.0, 15.0, 9.0), (0, 0, 1), 15.0, 5.0)  # z up to 11.5; extent ends at 9.875
    with pytest.raises(VOIError, match=r"1\.62 mm beyond the Superior edge.*Move the VOI"):
        cylinder_mask(volume, voi)


def test_voi_smaller_than_a_voxel_is_refused():
    volume = Volume(np.zeros((10, 10, 10), np.uint8), (1.0, 1.0, 1.0))
    with pytest.raises(VOIError, match="no voxel"):
        cylinder_mask(volume, CylinderVOI((4.5, 4.5, 4.5), (0, 0, 1), 0.3, 0.3))


def test_crop_keeps_geometry_and_mask():
    volume = _volume((0.3, 0.4, 0.5))
    rng = np.random.default_rng(3)
    volume = volume.with_array(rng.integers(0, 255, volume.shape_zyx).astype(np.uint8))
    voi = CylinderVOI(tuple(volume.centre_lps_mm()), _tilted_axis(15.0), 10.0, 4.0)
    full = cylinder_mask(volume, voi)
    cropped = crop_to_voi(volume, voi, margin_mm=1.0)
    sub = cylinder_mask(cropped, voi)
    assert sub.sum() == full.sum()
    box = voi_slices(volume, voi, margin_mm=1.0)
    np.testing.assert_array_equal(cropped.array, volume.array[box])
    np.testing.assert_array_equal(sub, full[box])


@pytest.mark.parametrize("tilt_deg", [0.0, 14.0])
def test_object_to_world_drives_a_real_slicer_roi_node(tilt_deg):
    # Real MRML from the slicer-core wheel (a dev dependency): the ROI box must enclose exactly
    # the cylinder, and reading the node back must give the same cylinder.
    slicer = pytest.importorskip("slicer", reason="slicer-core wheel is a dev dependency (pip install slicer-core)")
    import vtk

    scene = slicer.vtkMRMLScene()
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "VOI")
    voi = CylinderVOI((3.0, -40.0, 12.5), _tilted_axis(tilt_deg, 75.0), 15.0, 5.0)
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, voi.object_to_world(world="ras")[r, c])
    roi.SetSize(*voi.roi_size_mm())
    roi.GetObjectToNodeMatrix().DeepCopy(matrix)
    roi.Modified()
    centre = [0.0] * 3
    roi.GetCenterWorld(centre)
    np.testing.assert_allclose(centre, (-3.0, 40.0, 12.5), atol=1e-9)
    z_axis = [0.0] * 3
    roi.GetZAxisWorld(z_axis)
    np.testing.assert_allclose(z_axis, np.diag([-1, -1, 1]) @ np.asarray(voi.axis_lps), atol=1e-9)
    world = roi.GetObjectToWorldMatrix()
    back = CylinderVOI.from_object_to_world(
        np.array([[world.GetElement(r, c) for c in range(4)] for r in range(4)]), roi.GetSize(), world="ras"
    )
    np.testing.assert_allclose(back.centre_lps_mm, voi.centre_lps_mm, atol=1e-9)
    np.testing.assert_allclose(back.axis_lps, voi.axis_lps, atol=1e-9)
    # points just inside / outside the cylinder's extreme along its axis and radius lie in / out of the ROI box
    frame = voi.frame_lps()
    for local, expected in (((7.49, 7.49, 2.49), True), ((7.51, 0, 0), False), ((0, 0, 2.51), False)):
        point_lps = np.asarray(voi.centre_lps_mm) + frame @ np.array(local)
        assert bool(roi.IsPointInROIWorld(np.diag([-1, -1, 1]) @ point_lps)) is expected
