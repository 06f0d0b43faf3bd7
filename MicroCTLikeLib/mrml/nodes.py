"""Volume nodes <-> :class:`~MicroCTLikeLib.volume.Volume` (Slicer is RAS, the library is LPS).

``slicer`` and ``vtk`` are imported inside the functions, so importing this module without
slicer-core is harmless. Nothing here touches qt, ctk or ``slicer.app``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidVolumeError
from ..volume import Volume

#: Multiply an LPS point by this to get RAS (and back: it is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _scene(scene=None):
    import slicer

    scene = scene if scene is not None else getattr(slicer, "mrmlScene", None)
    if scene is None:
        raise RuntimeError("no MRML scene: set slicer.mrmlScene or pass scene=")
    return scene


def _vtk_to_numpy_4x4(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _numpy_to_vtk_4x4(array: np.ndarray):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def _node_to_world_ras(node) -> np.ndarray:
    """4x4 transform from the node's local RAS to world RAS (linear parent transforms only)."""
    import vtk

    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise InvalidVolumeError(
            f"{node.GetName()}: its parent transform is not linear; harden the transform first"
        )
    matrix = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(matrix)
    return _vtk_to_numpy_4x4(matrix)


def volume_from_node(volume_node) -> Volume:
    """Copy a scalar volume node into a :class:`Volume` (LPS, parent transforms applied).

    Raises :class:`InvalidVolumeError` for a node with no image data or a non-linear
    parent transform.
    """
    import slicer
    import vtk

    if volume_node is None or volume_node.GetImageData() is None:
        name = volume_node.GetName() if volume_node is not None else "volume"
        raise InvalidVolumeError(f"{name}: the volume node holds no image data")
    array = np.array(slicer.util.arrayFromVolume(volume_node), copy=True)
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    world = _node_to_world_ras(volume_node) @ _vtk_to_numpy_4x4(ijk_to_ras)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :4] = LPS_TO_RAS @ world[:3, :4]
    linear = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0):
        raise InvalidVolumeError(f"{volume_node.GetName()}: zero spacing in its IJK-to-RAS matrix")
    return Volume(
        array,
        spacing_xyz_mm=tuple(spacing),
        origin_lps_mm=tuple(ijk_to_lps[:3, 3]),
        direction_lps=linear / spacing,
        metadata={"source": f"MRML node {volume_node.GetName()} ({volume_node.GetID()})"},
    )


def node_from_volume(volume: Volume, name: str, *, node=None, scene=None, node_class: str = "vtkMRMLScalarVolumeNode"):
    """Create (or overwrite ``node``) a scalar volume node holding ``volume`` in RAS.

    Returns the node. The node shows the volume where it is in physical space, so a
    generated volume overlays its MDCT input.
    """
    import slicer

    scene = _scene(scene)
    if node is None:
        node = scene.AddNewNodeByClass(node_class, name)
    ijk_to_lps = volume.ijk_to_lps()
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :4] = LPS_TO_RAS @ ijk_to_lps[:3, :4]
    # updateVolumeFromArray keeps the node's geometry; set it first from the matrix.
    node.SetIJKToRASMatrix(_numpy_to_vtk_4x4(ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    return node


