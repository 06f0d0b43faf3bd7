"""Cylindrical VOIs <-> ``vtkMRMLMarkupsROINode`` and the cylinder model that shows them.

An ROI of size diameter x diameter x height mm shows one cylinder; the ROI's local z axis
is the cylinder axis. The radiologist works with exactly two of them, the superior and the
inferior VOI (:data:`VOI_ROLES`): each is one ROI node tagged with its role, reused by
every placement, with a cylinder model node referenced from it. :class:`VOIFollower`
keeps the standard size (restoring it when anything changes it), keeps each cylinder model
on its ROI when the ROI is dragged or its parent transform changes, and tells the caller
which VOI moved (so it can re-measure or mark the table stale).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import VOIError
from .nodes import LPS_TO_RAS, _numpy_to_vtk_4x4, _scene, _vtk_to_numpy_4x4, volume_from_node

#: The two VOIs of the study, in the order the module shows them.
VOI_ROLES = ("superior", "inferior")
#: Node attribute holding a VOI ROI's role (one of :data:`VOI_ROLES`).
ROLE_ATTRIBUTE = "MicroCTLike.VOIRole"
#: Node reference from a VOI ROI to its cylinder model.
CYLINDER_REFERENCE = "MicroCTLikeCylinder"
#: Size of a standard VOI's ROI box: 15 mm diameter x 15 mm x 5 mm height (the study's VOI).
STANDARD_ROI_SIZE_MM = (15.0, 15.0, 5.0)
#: Tolerance (mm) below which an ROI size counts as the standard size.
SIZE_TOLERANCE_MM = 1e-3


def roi_node_from_cylinder(voi, name: Optional[str] = None, *, node=None, scene=None):
    """Create (or update) a ``vtkMRMLMarkupsROINode`` showing a cylindrical VOI.

    The ROI has size diameter x diameter x height mm; :func:`configure_voi_roi` sets its
    interaction (the standardized size cannot be changed by dragging; it moves and rotates).
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
    configure_voi_roi(node)
    return node


def configure_voi_roi(roi_node) -> None:
    """Display and interaction of a VOI ROI: scale handles off, translate and rotate handles on."""
    if roi_node.GetDisplayNode() is None:
        roi_node.CreateDefaultDisplayNodes()
    display = roi_node.GetDisplayNode()
    if display is not None:
        display.SetHandlesInteractive(True)
        display.SetScaleHandleVisibility(False)
        display.SetTranslationHandleVisibility(True)
        display.SetRotationHandleVisibility(True)
    roi_node.SetAttribute("MicroCTLike.VOI", "cylinder")


def roi_has_standard_size(roi_node, size_mm: Sequence[float] = STANDARD_ROI_SIZE_MM) -> bool:
    """Whether the ROI's box has the standard size (within :data:`SIZE_TOLERANCE_MM`)."""
    return bool(np.all(np.abs(np.asarray(roi_node.GetSize(), dtype=float) - np.asarray(size_mm)) <= SIZE_TOLERANCE_MM))


def enforce_roi_size(roi_node, size_mm: Sequence[float] = STANDARD_ROI_SIZE_MM) -> bool:
    """Give the ROI the standard size again, keeping its centre and orientation; True when it changed.

    An ROI with no control point yet (being placed) gets its centre at the origin of its frame.
    """
    if roi_has_standard_size(roi_node, size_mm):
        return False
    centre = [0.0, 0.0, 0.0]
    if roi_node.GetNumberOfControlPoints() > 0:
        roi_node.GetCenter(centre)
    roi_node.SetSize(*[float(v) for v in size_mm])
    roi_node.SetCenter(*centre)
    return True


def find_voi_roi(role: str, *, scene=None):
    """The ROI node holding the ``role`` VOI (``"superior"`` / ``"inferior"``), or None."""
    if role not in VOI_ROLES:
        raise VOIError(f"unknown VOI role {role!r}; use one of {VOI_ROLES}")
    scene = _scene(scene)
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLMarkupsROINode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLMarkupsROINode")
        if node.GetAttribute(ROLE_ATTRIBUTE) == role:
            return node
    return None


def voi_roi_nodes(*, scene=None) -> List:
    """Every ROI node tagged as a MicroCTLike VOI, superior first."""
    nodes = [find_voi_roi(role, scene=scene) for role in VOI_ROLES]
    return [n for n in nodes if n is not None]


def cylinder_model_of(roi_node):
    """The cylinder model node referenced from a VOI ROI (None when it has none)."""
    return roi_node.GetNodeReference(CYLINDER_REFERENCE) if roi_node is not None else None


def update_cylinder_model(roi_node, *, scene=None):
    """Create or refresh the cylinder model of ``roi_node`` from the ROI's current box; returns the model node."""
    scene = _scene(scene) if scene is None else scene
    model = cylinder_model_of(roi_node)
    voi = cylinder_from_roi(roi_node)
    if model is None:
        model = cylinder_model_node(voi, f"{roi_node.GetName()} cylinder", scene=roi_node.GetScene() or scene)
        roi_node.SetNodeReferenceID(CYLINDER_REFERENCE, model.GetID())
    else:
        cylinder_model_node(voi, node=model)
    return model


def set_voi_roi(role: str, voi, *, name: Optional[str] = None, scene=None, node=None):
    """Put ``voi`` into the ROI of ``role``, reusing that ROI (and its cylinder model) when it exists.

    ``node`` (an ROI chosen by the user) takes the role when given; any other ROI holding
    the role gives it up, so there is only ever one ROI per role. Returns the ROI node.
    """
    scene = _scene(scene)
    existing = find_voi_roi(role, scene=scene)
    roi = node if node is not None else existing
    if existing is not None and roi is not existing:
        existing.RemoveAttribute(ROLE_ATTRIBUTE)
    if roi is None:
        roi = roi_node_from_cylinder(voi, name or f"VOI {role}", scene=scene)
    else:
        roi_node_from_cylinder(voi, node=roi, scene=scene)
    roi.SetAttribute(ROLE_ATTRIBUTE, role)
    configure_voi_roi(roi)
    update_cylinder_model(roi, scene=scene)
    return roi


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
    if node is None:  # only a new node needs a scene (there is no slicer.mrmlScene outside Slicer)
        node = _scene(scene).AddNewNodeByClass("vtkMRMLModelNode", name or f"{getattr(voi, 'name', 'VOI')} cylinder")
        node.CreateDefaultDisplayNodes()
    node.SetAndObservePolyData(transform_filter.GetOutput())
    display = node.GetDisplayNode()
    if display is not None:
        display.SetOpacity(0.35)
        display.SetColor(1.0, 0.8, 0.1)
        display.SetVisibility2D(True)
    return node



def place_standard_vois(volume_node, *, scene=None, rois: Sequence = (None, None), **placement_options):
    """Find the vertebral body in a volume node and put the two standard VOIs into their ROI nodes.

    Returns (superior ROI node, inferior ROI node). Placing again reuses the same two ROIs
    (and their cylinder models): ``rois`` (e.g. the ROIs selected in the module) first,
    else the ROIs tagged with the roles, else new ones. Never more than two VOI ROIs.
    """
    from ..voi import place_standard_vois as place

    placement = place(volume_from_node(volume_node), **placement_options)
    by_name = {voi.name: voi for voi in placement.vois}
    nodes = []
    for role, chosen in zip(VOI_ROLES, tuple(rois) + (None,) * (2 - len(rois))):
        voi = by_name.get(role)
        if voi is None:
            raise VOIError(f"standard placement returned no {role} VOI (got {sorted(by_name)})")
        nodes.append(set_voi_roi(role, voi, name=f"{volume_node.GetName()} VOI {role}", scene=scene, node=chosen))
    return tuple(nodes)


def vois_region_lps(roi_nodes: Sequence, *, margin_mm: float) -> Tuple[np.ndarray, np.ndarray]:
    """The LPS box (min corner, max corner, mm) covering the cylinders of ``roi_nodes`` plus ``margin_mm``.

    This is the region the generator runs on, so the micro-CT-like volume covers every VOI
    the user has (wherever it was dragged) with room for the measurement's margin.
    """
    vois = [cylinder_from_roi(node) for node in roi_nodes if node is not None]
    if not vois:
        raise VOIError("no VOI to generate around: place the standard VOIs (or select ROI nodes) first")
    bounds = np.array([voi.bounds_lps() for voi in vois])
    return bounds[:, 0].min(axis=0) - float(margin_mm), bounds[:, 1].max(axis=0) + float(margin_mm)


class VOIFollower:
    """Observers that keep VOI ROIs standard and their cylinder models on them.

    On every change of an observed ROI (a drag of its handles, a new parent transform, a
    resize by any means): the standard size is restored if it changed (translate and
    rotate are kept), the cylinder model is rebuilt at the ROI's place, and
    ``on_moved(roi_node)`` is called (the module re-measures or marks the table stale).

    Parameters
    ----------
    on_moved : callable(roi_node), optional
    size_mm : 3 floats
        The enforced ROI size (default :data:`STANDARD_ROI_SIZE_MM`).

    Call :meth:`observe` with the ROIs to follow (again whenever the selection changes)
    and :meth:`close` when done.
    """

    def __init__(self, on_moved: Optional[Callable] = None, *, size_mm: Sequence[float] = STANDARD_ROI_SIZE_MM):
        self.on_moved = on_moved
        self.size_mm = tuple(float(v) for v in size_mm)
        self._observations: Dict[str, Tuple[object, List[int]]] = {}
        self._busy = False
        self.restored_sizes = 0

    @property
    def nodes(self) -> List:
        return [node for node, _ in self._observations.values()]

    def observe(self, roi_nodes: Sequence) -> None:
        """Follow exactly these ROI nodes (None entries are skipped); others are released."""
        import vtk
        from slicer import vtkMRMLMarkupsNode, vtkMRMLTransformableNode

        wanted = {node.GetID(): node for node in roi_nodes if node is not None}
        for node_id in list(self._observations):
            if node_id not in wanted:
                self._release(node_id)
        for node_id, node in wanted.items():
            if node_id in self._observations:
                continue
            events = (vtk.vtkCommand.ModifiedEvent, vtkMRMLMarkupsNode.PointModifiedEvent,
                      vtkMRMLTransformableNode.TransformModifiedEvent)
            tags = [node.AddObserver(event, self._on_event) for event in events]
            self._observations[node_id] = (node, tags)
            configure_voi_roi(node)
            self.follow(node)

    def _release(self, node_id: str) -> None:
        node, tags = self._observations.pop(node_id)
        for tag in tags:
            node.RemoveObserver(tag)

    def close(self) -> None:
        for node_id in list(self._observations):
            self._release(node_id)

    def _on_event(self, caller, event) -> None:
        if self._busy:
            return
        self.follow(caller)
        if self.on_moved is not None:
            self.on_moved(caller)

    def follow(self, roi_node) -> None:
        """Restore the size of ``roi_node`` if needed and move its cylinder model onto it."""
        self._busy = True
        try:
            if enforce_roi_size(roi_node, self.size_mm):
                self.restored_sizes += 1
            if roi_node.GetNumberOfControlPoints() > 0 or roi_node.GetAttribute(ROLE_ATTRIBUTE):
                update_cylinder_model(roi_node, scene=roi_node.GetScene())
        finally:
            self._busy = False


def cylinder_model_centre_ras(model_node) -> np.ndarray:
    """Centre (RAS) of a cylinder model's surface points (for checks: it equals the VOI centre)."""
    from vtk.util.numpy_support import vtk_to_numpy

    points = vtk_to_numpy(model_node.GetPolyData().GetPoints().GetData())
    return (points.min(axis=0) + points.max(axis=0)) / 2


__all__ = [
    "CYLINDER_REFERENCE", "LPS_TO_RAS", "ROLE_ATTRIBUTE", "STANDARD_ROI_SIZE_MM", "VOIFollower", "VOI_ROLES",
    "configure_voi_roi", "cylinder_from_roi", "cylinder_model_centre_ras", "cylinder_model_node", "cylinder_model_of",
    "enforce_roi_size", "find_voi_roi", "place_standard_vois", "roi_has_standard_size", "roi_node_from_cylinder",
    "set_voi_roi", "update_cylinder_model", "voi_roi_nodes", "vois_region_lps",
]
