"""MRML glue used by the Slicer module (and testable outside Slicer with ``slicer-core``).

Everything here works on a real MRML scene: volume nodes <-> :class:`~MicroCTLikeLib.volume.Volume`
(Slicer is RAS, the library is LPS), cylindrical VOIs <-> ``vtkMRMLMarkupsROINode`` of size
diameter x diameter x height (the ROI's local z axis is the cylinder axis), a cylinder model
that shows the true VOI shape, and a metrics table node.

``slicer`` is imported lazily inside the functions, so importing this module outside Slicer
(without slicer-core) is harmless. Nothing here touches qt, ctk or ``slicer.app``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .errors import InvalidVolumeError, VOIError
from .volume import Volume

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


# ---------------------------------------------------------------------- volumes
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


# ---------------------------------------------------------------------- VOIs
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
    from .voi import CylinderVOI

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


# ---------------------------------------------------------------------- results
def metrics_table_node(rows: List[Dict[str, Any]], name: str = "MicroCTLike metrics", *, node=None, scene=None):
    """Write a list of flat dicts (one per VOI and volume) to a ``vtkMRMLTableNode``.

    Columns are the union of keys in first-seen order; numbers become double columns,
    everything else strings. Returns the node.
    """
    import vtk

    scene = _scene(scene)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    table.Initialize()
    columns: List[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    for key in columns:
        numeric = all(isinstance(row.get(key), (int, float, np.floating, np.integer)) and not isinstance(row.get(key), bool)
                      for row in rows if key in row)
        array = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        array.SetName(key)
        table.AddColumn(array)
    table.SetNumberOfRows(len(rows))
    for r, row in enumerate(rows):
        for c, key in enumerate(columns):
            value = row.get(key, "")
            column = table.GetColumn(c)
            if isinstance(column, vtk.vtkDoubleArray):
                column.SetValue(r, float(value) if value != "" else float("nan"))
            else:
                column.SetValue(r, str(value))
    table.Modified()
    node.Modified()
    return node


# ---------------------------------------------------------------------- GUI state
def action_states(*, has_input: bool, has_vois: bool, generating: bool) -> Dict[str, tuple]:
    """Enabled flag, tooltip and label of each module button, derived from the parameter state.

    Returns ``{button_name: (enabled, tooltip, text)}``; the widget only copies these.
    """
    if generating:
        generate = (True, "Stop the running generation (nothing is written).", "Cancel")
    elif has_input:
        generate = (True, "Generate the micro-CT-like volume from the selected MDCT volume.", "Generate")
    else:
        generate = (False, "Select an MDCT volume first.", "Generate")
    place = (
        (has_input and not generating),
        "Find the vertebral body and place the two standardized VOIs." if has_input else "Select an MDCT volume first.",
        "Place standard VOIs",
    )
    if not has_input:
        measure = (False, "Select an MDCT volume first.", "Measure")
    elif not has_vois:
        measure = (False, "Place the standard VOIs (or select ROI nodes) first.", "Measure")
    else:
        measure = (not generating, "Measure BV/TV, Tb.Th and Tb.Sp in the VOIs.", "Measure")
    return {"generateButton": generate, "placeStandardVOIsButton": place, "measureButton": measure}


# ---------------------------------------------------------------------- generation worker
def start_generation_worker(input_node, *, model_path, device: str = "auto", region: str = "standard-vois",
                            python: Optional[str] = None, on_progress=None, on_log=None):
    """Write the input volume to a temporary NRRD and start ``microctlike generate`` in a child process.

    The child (PythonSlicer inside Slicer) prints PROGRESS lines; poll the returned
    :class:`~MicroCTLikeLib.process_runner.ProcessRunner` from a timer, then call
    :func:`finish_generation_worker`. The input node is never modified.
    """
    import os
    import tempfile
    from pathlib import Path

    from .process_runner import ProcessRunner, python_module_command
    from .volume import write_volume

    work_dir = Path(tempfile.mkdtemp(prefix="microctlike-"))
    try:
        input_path = write_volume(volume_from_node(input_node), work_dir / "mdct.nrrd")
        output_path = work_dir / "microct_like.nrrd"
        command = python_module_command(
            "generate", str(input_path), "--out", str(output_path), "--model", str(model_path),
            "--device", device, "--region", region, "--progress-lines", "--json", python=python,
        )
        # PythonSlicer does not have the extension's module folder on its path: give it ours.
        env = dict(os.environ)
        library_parent = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (library_parent, env.get("PYTHONPATH", "")) if p)
        env["PYTHONIOENCODING"] = "utf-8"
        runner = ProcessRunner(command, on_progress=on_progress, on_log=on_log, env=env)
    except BaseException:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    runner.work_dir = work_dir
    runner.output_path = output_path
    runner.input_name = input_node.GetName()
    return runner


def finish_generation_worker(runner, exit_code: int, *, output_node=None, scene=None):
    """Load the worker's output into ``output_node`` (or a new node) and remove the temporary files."""
    from .volume import read_volume

    try:
        runner.check(exit_code)
        volume = read_volume(runner.output_path)
        return node_from_volume(volume, f"{runner.input_name} micro-CT-like", node=output_node, scene=scene)
    finally:
        cleanup_generation_worker(runner)


def cleanup_generation_worker(runner) -> None:
    """Remove the worker's temporary folder (after success, failure or cancel)."""
    import shutil

    work_dir = getattr(runner, "work_dir", None)
    if work_dir is not None:
        shutil.rmtree(work_dir, ignore_errors=True)


# ---------------------------------------------------------------------- VOIs and metrics
def place_standard_vois(volume_node, *, scene=None, **placement_options):
    """Find the vertebral body in a volume node and add the two standard VOIs as ROI nodes.

    Returns (superior ROI node, inferior ROI node); each also gets a cylinder model node
    (shown in 2-D and 3-D) so the true VOI shape is visible inside the ROI box.
    """
    from .voi import place_standard_vois as place

    placement = place(volume_from_node(volume_node), **placement_options)
    nodes = []
    base = volume_node.GetName()
    for voi in placement.vois:
        roi = roi_node_from_cylinder(voi, f"{base} VOI {voi.name}", scene=scene)
        cylinder_model_node(voi, f"{base} VOI {voi.name} cylinder", scene=scene)
        nodes.append(roi)
    return tuple(nodes)


def measure_volumes_in_rois(volume_nodes: Sequence, roi_nodes: Sequence, *, threshold="isodata",
                            tb_sp_policy: str = "margin", margin_mm: Optional[float] = None) -> List[Dict[str, Any]]:
    """BV/TV, Tb.Th, Tb.Sp of every volume node in every ROI's cylinder, one row each.

    Rows hold ``volume``, ``voi`` and the metrics with units in the names, plus the
    threshold and the Tb.Sp policy used (so a saved table says how it was measured).
    """
    from .measurement import measure_in_voi
    from .morphometry import DEFAULT_MARGIN_MM

    if not volume_nodes:
        raise InvalidVolumeError("select at least one volume to measure")
    if not roi_nodes:
        raise VOIError("place the standard VOIs (or select ROI nodes) before measuring")
    vois = [cylinder_from_roi(node) for node in roi_nodes]
    rows = []
    for node in volume_nodes:
        volume = volume_from_node(node)
        for voi in vois:
            result = measure_in_voi(volume, voi, threshold=threshold, tb_sp_policy=tb_sp_policy,
                                    margin_mm=DEFAULT_MARGIN_MM if margin_mm is None else margin_mm)
            rows.append({
                "volume": node.GetName(), "voi": voi.name, "bv_tv": result.bv_tv, "tb_th_mm": result.tb_th_mm,
                "tb_th_sd_mm": result.tb_th_sd_mm, "tb_sp_mm": result.tb_sp_mm, "tb_sp_sd_mm": result.tb_sp_sd_mm,
                "threshold": "" if result.threshold is None else result.threshold,
                "threshold_method": result.threshold_method, "tb_sp_policy": result.tb_sp_policy,
            })
    return rows
