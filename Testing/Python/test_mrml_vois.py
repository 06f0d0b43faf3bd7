"""The two VOIs as the radiologist meets them, on a real MRML scene (slicer-core): fixed size,
exactly two ROIs, cylinder models that follow a drag, re-measurement that equals the library's,
and the generation region that follows the VOIs."""

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core wheel is a dev dependency (pip install slicer-core)")

from MicroCTLikeLib import mrml  # noqa: E402
from MicroCTLikeLib.mrml import vois  # noqa: E402
from MicroCTLikeLib.mrml.nodes import _numpy_to_vtk_4x4, _vtk_to_numpy_4x4  # noqa: E402


@pytest.fixture(scope="module")
def specimen():
    from MicroCTLikeLib.simulate import simulate_specimen

    return simulate_specimen(11, preset="small")


def _drag(roi, offset_ras_mm):
    """What a drag of the translate handle does: the ROI's object-to-node matrix moves."""
    matrix = _vtk_to_numpy_4x4(roi.GetObjectToNodeMatrix())
    matrix[:3, 3] += np.asarray(offset_ras_mm, dtype=float)
    roi.GetObjectToNodeMatrix().DeepCopy(_numpy_to_vtk_4x4(matrix))
    roi.Modified()


def _model_centre(roi):
    return vois.cylinder_model_centre_ras(mrml.cylinder_model_of(roi))


def test_drag_moves_the_cylinder_and_the_remeasured_table_equals_the_library(scene, specimen):
    from MicroCTLikeLib.measurement import measure_in_voi

    node = mrml.node_from_volume(specimen.mdct, "MDCT")
    superior, inferior = mrml.place_standard_vois(node, scene=scene)
    table = mrml.metrics_table_node(mrml.measure_volumes_in_rois([node], [superior, inferior]), scene=scene)
    before = mrml.table_rows(table)

    moved = []

    def on_moved(roi):  # what the module does after a drag: mark stale, then re-measure
        moved.append(roi.GetAttribute(vois.ROLE_ATTRIBUTE))
        mrml.mark_table_stale(table)

    follower = mrml.VOIFollower(on_moved=on_moved)
    follower.observe([superior, inferior])
    try:
        centre_before = np.array(superior.GetCenterWorld())
        _drag(superior, (-0.8, 0.5, 0.5))
        centre_after = np.array(superior.GetCenterWorld())
        np.testing.assert_allclose(centre_after - centre_before, (-0.8, 0.5, 0.5), atol=1e-9)
        np.testing.assert_allclose(_model_centre(superior), centre_after, atol=1e-6)  # the cylinder followed
        assert "superior" in moved and mrml.table_is_stale(table)

        rows = mrml.measure_volumes_in_rois([node], [superior, inferior])
        mrml.metrics_table_node(rows, node=table)
        after = mrml.table_rows(table)
        assert not mrml.table_is_stale(table)
        assert after[0]["Tb.Th (mm)"] != before[0]["Tb.Th (mm)"]  # the moved VOI measures other bone
        assert after[1] == before[1]  # the inferior VOI did not move
        # independent truth: the library on the Volume and the cylinder at the dragged place
        voi = vois.cylinder_from_roi(superior)
        np.testing.assert_allclose(voi.centre_lps_mm, mrml.LPS_TO_RAS @ centre_after, atol=1e-9)
        direct = measure_in_voi(specimen.mdct, voi)
        assert after[0]["BV/TV"] == pytest.approx(direct.bv_tv, rel=1e-12)
        assert after[0]["Tb.Th (mm)"] == pytest.approx(direct.tb_th_mm, rel=1e-12)
        assert after[0]["Tb.Sp (mm)"] == pytest.approx(direct.tb_sp_mm, rel=1e-12)
    finally:
        follower.close()


def test_a_parent_transform_moves_the_cylinder_too(scene):
    from MicroCTLikeLib.voi import CylinderVOI

    roi = mrml.set_voi_roi("inferior", CylinderVOI((5.0, -3.0, 2.0), (0.0, 0.0, 1.0)), scene=scene)
    follower = mrml.VOIFollower()
    follower.observe([roi])
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = np.eye(4)
    shift[:3, 3] = (0.0, 4.0, -2.0)
    transform.SetMatrixTransformToParent(_numpy_to_vtk_4x4(shift))
    roi.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(_model_centre(roi), roi.GetCenterWorld(), atol=1e-6)
    np.testing.assert_allclose(roi.GetCenterWorld(), (-5.0 + 0.0, 3.0 + 4.0, 2.0 - 2.0), atol=1e-9)
    follower.close()


def test_an_roi_set_to_another_size_is_restored_to_15_x_15_x_5(scene):
    from MicroCTLikeLib.voi import CylinderVOI

    roi = mrml.set_voi_roi("superior", CylinderVOI((1.0, 2.0, 3.0), (0.3, 0.0, 1.0)), scene=scene)
    orientation = _vtk_to_numpy_4x4(roi.GetObjectToWorldMatrix())
    follower = mrml.VOIFollower()
    follower.observe([roi])
    roi.SetSize(20.0, 20.0, 10.0)  # e.g. scale handles, the Markups module, or a place-widget redraw
    assert tuple(roi.GetSize()) == (15.0, 15.0, 5.0)
    assert follower.restored_sizes == 1
    np.testing.assert_allclose(_vtk_to_numpy_4x4(roi.GetObjectToWorldMatrix()), orientation, atol=1e-9)
    voi = vois.cylinder_from_roi(roi)
    assert (voi.diameter_mm, voi.height_mm) == pytest.approx((15.0, 5.0), abs=1e-9)
    display = roi.GetDisplayNode()
    assert not display.GetScaleHandleVisibility()
    assert display.GetTranslationHandleVisibility() and display.GetRotationHandleVisibility()
    follower.close()
    roi.SetSize(20.0, 20.0, 10.0)  # no longer followed: nothing restores it
    assert tuple(roi.GetSize()) == (20.0, 20.0, 10.0)


def test_an_roi_drawn_by_the_place_widget_gets_the_standard_size(scene):
    """A new ROI drawn by hand (two corner clicks, any size) becomes a standard VOI once followed."""
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "drawn")
    roi.CreateDefaultDisplayNodes()
    follower = mrml.VOIFollower()
    follower.observe([roi])
    roi.SetCenter(10.0, 0.0, -4.0)
    roi.SetSize(31.0, 7.0, 12.0)
    assert tuple(roi.GetSize()) == (15.0, 15.0, 5.0)
    np.testing.assert_allclose(roi.GetCenterWorld(), (10.0, 0.0, -4.0), atol=1e-9)
    np.testing.assert_allclose(_model_centre(roi), (10.0, 0.0, -4.0), atol=1e-6)
    follower.close()


def test_place_twice_keeps_exactly_two_rois_and_two_cylinders(scene, specimen):
    node = mrml.node_from_volume(specimen.mdct, "MDCT")
    first = mrml.place_standard_vois(node, scene=scene)
    _drag(first[0], (3.0, 0.0, 0.0))
    second = mrml.place_standard_vois(node, scene=scene)
    assert second[0] is first[0] and second[1] is first[1]
    assert scene.GetNumberOfNodesByClass("vtkMRMLMarkupsROINode") == 2
    assert scene.GetNumberOfNodesByClass("vtkMRMLModelNode") == 2
    # placing again puts the dragged VOI back at the standard place
    from MicroCTLikeLib.voi import place_standard_vois

    expected = place_standard_vois(specimen.mdct).vois[0]
    np.testing.assert_allclose(vois.cylinder_from_roi(second[0]).centre_lps_mm, expected.centre_lps_mm, atol=1e-9)
    assert [n.GetAttribute(vois.ROLE_ATTRIBUTE) for n in mrml.voi_roi_nodes(scene=scene)] == ["superior", "inferior"]
    # a user-chosen ROI takes the role over: still one ROI per role
    chosen = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "mine")
    mrml.place_standard_vois(node, scene=scene, rois=[chosen, None])
    assert mrml.find_voi_roi("superior", scene=scene) is chosen
    assert [n.GetAttribute(vois.ROLE_ATTRIBUTE) for n in scene.GetNodesByClass("vtkMRMLMarkupsROINode")].count(
        "superior") == 1


def test_generation_region_covers_both_vois_after_a_drag(scene, specimen):
    from MicroCTLikeLib.inference import region_slices
    from MicroCTLikeLib.voi import voi_index_bounds

    node = mrml.node_from_volume(specimen.mdct, "MDCT")
    superior, inferior = mrml.place_standard_vois(node, scene=scene)
    _drag(superior, (2.0, 2.5, 1.0))
    low, high = mrml.generation_region([superior, inferior])
    for roi in (superior, inferior):
        bounds = vois.cylinder_from_roi(roi).bounds_lps()
        assert np.all(np.asarray(low) <= bounds[0] - mrml.worker.REGION_MARGIN_MM + 1e-9)
        assert np.all(np.asarray(high) >= bounds[1] + mrml.worker.REGION_MARGIN_MM - 1e-9)
    # the index box the worker generates holds every voxel of both cylinders and of the measurement crop
    slices, _ = region_slices(specimen.mdct, (low, high))
    from MicroCTLikeLib.measurement import crop_margin_mm
    from MicroCTLikeLib.morphometry import DEFAULT_MARGIN_MM
    from MicroCTLikeLib.voi import voi_slices

    for roi in (superior, inferior):
        voi = vois.cylinder_from_roi(roi)
        need = voi_slices(specimen.mdct, voi, margin_mm=crop_margin_mm(specimen.mdct, DEFAULT_MARGIN_MM))
        for axis in range(3):
            assert slices[axis].start <= need[axis].start and slices[axis].stop >= need[axis].stop
        assert voi_index_bounds(specimen.mdct, voi).shape == (2, 3)
    assert mrml.worker.region_argument((low, high)).count(",") == 5
    with pytest.raises(Exception, match="place the standard VOIs"):
        mrml.generation_region([])
