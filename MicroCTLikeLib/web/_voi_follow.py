"""Cylinder models that follow dragged VOI ROIs, for the web session.

A stop-gap with the interface of ``MicroCTLikeLib.mrml.vois.VOIFollower`` (being written for
the Slicer module): the session uses that one as soon as the mrml package has it, and this
file goes away. It only calls the mrml package's own functions.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple


def cylinder_model_for(roi_node):
    """The cylinder model node shown with an ROI (named ``<ROI name> cylinder`` by the mrml package)."""
    scene = roi_node.GetScene()
    return scene.GetFirstNodeByName(f"{roi_node.GetName()} cylinder") if scene is not None else None


class VOIFollower:
    """Rebuild each observed ROI's cylinder model when the ROI moves, then call ``on_moved(roi)``."""

    def __init__(self, on_moved: Optional[Callable] = None):
        self.on_moved = on_moved
        self._observations: Dict[str, Tuple[object, List[int]]] = {}
        self._busy = False

    def observe(self, roi_nodes) -> None:
        import vtk
        from slicer import vtkMRMLMarkupsNode

        self.close()
        for node in roi_nodes:
            if node is None:
                continue
            tags = [node.AddObserver(event, self._on_event)
                    for event in (vtk.vtkCommand.ModifiedEvent, vtkMRMLMarkupsNode.PointModifiedEvent)]
            self._observations[node.GetID()] = (node, tags)

    def close(self) -> None:
        for node, tags in self._observations.values():
            for tag in tags:
                node.RemoveObserver(tag)
        self._observations = {}

    def _on_event(self, caller, _event) -> None:
        from ..mrml.vois import cylinder_from_roi, cylinder_model_node

        if self._busy:
            return
        self._busy = True
        try:
            model = cylinder_model_for(caller)
            if model is not None:
                cylinder_model_node(cylinder_from_roi(caller), node=model, scene=caller.GetScene())
            if self.on_moved is not None:
                self.on_moved(caller)
        finally:
            self._busy = False
