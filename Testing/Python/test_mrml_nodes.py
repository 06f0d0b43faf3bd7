"""MRML glue against a real MRML scene from the slicer-core wheel (no desktop Slicer needed)."""

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core wheel is a dev dependency (pip install slicer-core)")

from MicroCTLikeLib import mrml  # noqa: E402
from MicroCTLikeLib.errors import InvalidVolumeError, VOIError  # noqa: E402
from MicroCTLikeLib.volume import Volume  # noqa: E402
from MicroCTLikeLib.voi import CylinderVOI  # noqa: E402


def _oblique(angle_deg):
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def test_volume_round_trip_through_a_volume_node(scene):
    rng = np.random.default_rng(1)
    volume = Volume(rng.integers(-1000, 2000, (4, 5, 6)).astype(np.int16), spacing_xyz_mm=(0.195, 0.3, 0.1),
                    origin_lps_mm=(12.0, -7.0, 30.0), direction_lps=_oblique(15))
    node = mrml.node_from_volume(volume, "mdct", scene=scene)
    # Slicer stores RAS: the origin's first two coordinates flip sign
    np.testing.assert_allclose(node.GetOrigin(), (-12.0, 7.0, 30.0), atol=1e-9)
    np.testing.assert_allclose(node.GetSpacing(), (0.195, 0.3, 0.1))
    back = mrml.volume_from_node(node)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.same_geometry(volume, tol_mm=1e-9)
    # the same voxel maps to the same physical point in both conventions
    ijk_to_ras = np.array(slicer.util.arrayFromVTKMatrix(_ijk_to_ras(node)))
    ras = ijk_to_ras @ np.array([5, 4, 3, 1.0])
    np.testing.assert_allclose(mrml.LPS_TO_RAS @ volume.index_zyx_to_lps([3, 4, 5]), ras[:3], atol=1e-9)


def _ijk_to_ras(node):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return matrix


def test_parent_transform_is_applied(scene):
    import vtk

    volume = Volume(np.zeros((2, 2, 2), np.uint8))
    node = mrml.node_from_volume(volume, "v", scene=scene)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 10.0)  # 10 mm to the Right = -10 mm in L
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(mrml.volume_from_node(node).origin_lps_mm, (-10.0, 0.0, 0.0))


def test_empty_node_is_refused(scene):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InvalidVolumeError, match="empty: the volume node holds no image data"):
        mrml.volume_from_node(node)


@pytest.mark.parametrize("axis", [(0, 0, 1), (0.2, -0.1, 0.97), (1, 0, 0)])
def test_cylinder_round_trips_through_an_roi_node(scene, axis):
    axis = np.array(axis, float) / np.linalg.norm(axis)
    voi = CylinderVOI((3.0, -40.0, 12.5), tuple(axis), 15.0, 5.0, name="VOI superior")
    roi = mrml.roi_node_from_cylinder(voi, scene=scene)
    assert roi.GetName() == "VOI superior"
    assert tuple(roi.GetSize()) == (15.0, 15.0, 5.0)
    centre_ras = [0.0] * 3
    roi.GetCenterWorld(centre_ras)
    np.testing.assert_allclose(centre_ras, (-3.0, 40.0, 12.5), atol=1e-9)
    assert not roi.GetDisplayNode().GetScaleHandleVisibility()
    back = mrml.cylinder_from_roi(roi)
    np.testing.assert_allclose(back.centre_lps_mm, voi.centre_lps_mm, atol=1e-9)
    np.testing.assert_allclose(back.axis_lps, axis, atol=1e-9)
    assert (back.diameter_mm, back.height_mm) == pytest.approx((15.0, 5.0), abs=1e-9)
    assert back.name == "VOI superior"


def test_cylinder_model_has_the_cylinder_extent(scene):
    voi = CylinderVOI((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 15.0, 5.0, name="v")
    model = mrml.cylinder_model_node(voi, scene=scene)
    bounds = model.GetPolyData().GetBounds()
    np.testing.assert_allclose(bounds, (-7.5, 7.5, -7.5, 7.5, -2.5, 2.5), atol=1e-3)


def test_roi_with_zero_size_is_refused(scene):
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "flat")
    roi.SetSize(15, 15, 0)
    with pytest.raises(VOIError, match="flat"):
        mrml.cylinder_from_roi(roi)


def test_metrics_table(scene):
    rows = [{"voi": "superior", "bv_tv": 0.18, "tb_th_mm": 0.21}, {"voi": "inferior", "bv_tv": 0.16, "tb_th_mm": 0.2}]
    node = mrml.metrics_table_node(rows, scene=scene)
    table = node.GetTable()
    assert (table.GetNumberOfRows(), table.GetNumberOfColumns()) == (2, 3)
    # readable titles with units; units and descriptions also as column properties
    assert table.GetColumnByName("VOI").GetValue(1) == "inferior"
    assert table.GetColumnByName("BV/TV").GetValue(0) == pytest.approx(0.18)
    assert node.GetColumnUnitLabel("Tb.Th (mm)") == "mm" and "thickness" in node.GetColumnDescription("Tb.Th (mm)")
    # one table node, reused by the next measurement (found by its tag)
    again = mrml.metrics_table_node(rows[:1], scene=scene)
    assert again is node and scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 1
    assert node.GetTable().GetNumberOfRows() == 1


def test_action_states_follow_the_parameters():
    states = mrml.action_states(has_input=False, has_vois=False, generating=False)
    assert states["generateButton"][0] is False and "MDCT" in states["generateButton"][1]
    assert states["measureButton"][0] is False
    states = mrml.action_states(has_input=True, has_vois=False, generating=False)
    assert states["generateButton"][:1] == (True,) and states["placeStandardVOIsButton"][0]
    assert not states["measureButton"][0] and "VOI" in states["measureButton"][1]
    states = mrml.action_states(has_input=True, has_vois=True, generating=True)
    assert states["generateButton"] [2] == "Cancel" and states["generateButton"][0]
    assert not states["measureButton"][0] and not states["placeStandardVOIsButton"][0]
    states = mrml.action_states(has_input=True, has_vois=True, generating=False, has_table=True, table_stale=True)
    assert states["measureButton"][0] and "moved" in states["measureButton"][2] and states["exportCsvButton"][0]


@pytest.fixture(scope="module")
def simulated_specimen():
    from MicroCTLikeLib.simulate import simulate_specimen

    return simulate_specimen(11, preset="small")


def test_standard_vois_and_metrics_table_on_a_simulated_vertebra(scene, simulated_specimen):
    """The module's Place + Measure path on a real scene, checked against the library."""
    from MicroCTLikeLib.measurement import measure_in_voi
    from MicroCTLikeLib.voi import place_standard_vois

    node = mrml.node_from_volume(simulated_specimen.mdct, "MDCT")
    superior, inferior = mrml.place_standard_vois(node, scene=scene)
    assert tuple(superior.GetSize()) == (15.0, 15.0, 5.0)
    assert scene.GetNodesByClass("vtkMRMLModelNode").GetNumberOfItems() == 2
    expected = place_standard_vois(simulated_specimen.mdct).vois
    np.testing.assert_allclose(mrml.cylinder_from_roi(superior).centre_lps_mm, expected[0].centre_lps_mm,
                               atol=1e-9)
    rows = mrml.measure_volumes_in_rois([node], [superior, inferior])
    assert [r["voi"] for r in rows] == ["superior", "inferior"]  # the VOI roles, not the node names
    direct = measure_in_voi(simulated_specimen.mdct, expected[1])
    assert rows[1]["tb_th_mm"] == pytest.approx(direct.tb_th_mm, rel=1e-12)
    assert rows[1]["tb_sp_policy"] == "margin" and rows[1]["threshold_method"] == "isodata"
    table = mrml.metrics_table_node(rows, scene=scene)
    assert table.GetTable().GetNumberOfRows() == 2


def test_measuring_without_rois_says_what_to_do(scene, simulated_specimen):
    node = mrml.node_from_volume(simulated_specimen.mdct, "MDCT")
    with pytest.raises(VOIError, match="place the standard VOIs"):
        mrml.measure_volumes_in_rois([node], [])


def test_former_module_names_still_import_the_same_objects():
    from MicroCTLikeLib import mrml as package
    from MicroCTLikeLib import process_runner, slicer_logic
    from MicroCTLikeLib.mrml import process

    for name in slicer_logic.__all__:
        assert getattr(slicer_logic, name) is getattr(package, name)
    for name in process_runner.__all__:
        assert getattr(process_runner, name) is getattr(process, name)
