"""Cylindrical VOIs <-> ``vtkMRMLMarkupsROINode`` and the cylinder model that shows them.

An ROI of size diameter x diameter x height mm shows one cylinder; the ROI's local z axis
is the cylinder axis.
"""

from __future__ import annotations

from typing import Optional

from ..errors import VOIError
from .nodes import _numpy_to_vtk_4x4, _scene, _vtk_to_numpy_4x4, volume_from_node


def roi_node_from_cylinder(voi, name: Optional[str] = None, *, node=None, scene=None):
    """Create (or update) a ``vtkMRMLMarkupsROINode`` showing a cylindrical VOI.

    The ROI has size diameter x diameter x height mm; scale handles are hidden so the
    standardized size cannot be changed by dragging, translation and rotation stay on.
    ``voi`` is a :class:`~MicroCTLikeLib.voi.CylinderVOI`.
    """
    scene = _scene(scene)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", name or voi.name or "VOI")
        node.CreateDefaultDisplayNodes()
    matrix = voi.object_to_world(world="ras")
    node.SetSize(*voi.roi_size_mm())
    node.SetCenter(0.0, 0.0, 0.0)
    node.GetObjectToNodeMatrix().DeepCopy(_numpy_to_vtk_4x4(matrix))
    node.Modified()
    display = node.GetDisplayNode()
    if display is not None:
        display.SetScaleHandleVisibility(False)
        display.SetTranslationHandleVisibility(True)
        display.SetRotationHandleVisibility(True)
    node.SetAttribute("MicroCTLike.VOI", "cylinder")
    return node


def cylinder_from_roi(roi_node):
    """The :class:`~MicroCTLikeLib.voi.CylinderVOI` an ROI node shows, in world coordinates.

    Diameter = the ROI's local x (= y) size, height = its z size; parent transforms are
    applied (``GetObjectToWorldMatrix`` includes them). The VOI is named after the node.
    """
    from ..voi import CylinderVOI

    if roi_node is None:
        raise VOIError("no ROI node given")
    size = list(roi_node.GetSize())
    if min(size) <= 0:
        raise VOIError(f"{roi_node.GetName()}: ROI has zero size {size}")
    return CylinderVOI.from_object_to_world(_vtk_to_numpy_4x4(roi_node.GetObjectToWorldMatrix()), size, world="ras",
                                            name=roi_node.GetName())


def cylinder_model_node(voi, name: Optional[str] = None, *, node=None, scene=None, resolution: int = 64):
    """A model node with the cylinder's surface (RAS), to show the true VOI shape inside its ROI box."""
    import vtk

    scene = _scene(scene)
    source = vtk.vtkCylinderSource()
    source.SetRadius(float(voi.diameter_mm) / 2)
    source.SetHeight(float(voi.height_mm))
    source.SetResolution(resolution)
    source.CappingOn()
    # vtkCylinderSource's axis is y: rotate it onto the ROI's local z, then place it.
    to_local = vtk.vtkTransform()
    to_local.RotateX(90.0)
    place = vtk.vtkTransform()
    place.SetMatrix(_numpy_to_vtk_4x4(voi.object_to_world(world="ras")))
    place.Concatenate(to_local)
    transform_filter = vtk.vtkTransformPolyDataFilter()
    transform_filter.SetInputConnection(source.GetOutputPort())
    transform_filter.SetTransform(place)
    transform_filter.Update()
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLModelNode", name or f"{getattr(voi, 'name', 'VOI')} cylinder")
        node.CreateDefaultDisplayNodes()
    node.SetAndObservePolyData(transform_filter.GetOutput())
    display = node.GetDisplayNode()
    if display is not None:
        display.SetOpacity(0.35)
        display.SetColor(1.0, 0.8, 0.1)
        display.SetVisibility2D(True)
    return node



def place_standard_vois(volume_node, *, scene=None, **placement_options):
    """Find the vertebral body in a volume node and add the two standard VOIs as ROI nodes.

    Returns (superior ROI node, inferior ROI node); each also gets a cylinder model node
    (shown in 2-D and 3-D) so the true VOI shape is visible inside the ROI box.
    """
    from ..voi import place_standard_vois as place

    placement = place(volume_from_node(volume_node), **placement_options)
    nodes = []
    base = volume_node.GetName()
    for voi in placement.vois:
        roi = roi_node_from_cylinder(voi, f"{base} VOI {voi.name}", scene=scene)
        cylinder_model_node(voi, f"{base} VOI {voi.name} cylinder", scene=scene)
        nodes.append(roi)
    return tuple(nodes)


