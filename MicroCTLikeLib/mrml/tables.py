"""Metrics in VOIs of volume nodes, and the one table node that shows them.

:func:`measure_volumes_in_rois` returns machine rows (keys with units, as the library and the
CLI name them); :func:`metrics_table_node` writes them into a ``vtkMRMLTableNode`` with
readable column titles, units and descriptions (:data:`COLUMNS`), reusing the module's one
metrics table; :func:`export_table_csv` saves it. :func:`warm_up_measurement` pays the numba
compilation once, on a tiny volume, so the first real measurement is not a silent ~20 s.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import InvalidVolumeError, VOIError
from .nodes import _scene, volume_from_node
from .vois import ROLE_ATTRIBUTE, cylinder_from_roi

#: Attribute marking the module's metrics table (reused by every measurement).
TABLE_ATTRIBUTE = "MicroCTLike.MetricsTable"
#: Attribute set to "1" while the table no longer matches the VOIs (a VOI moved since).
STALE_ATTRIBUTE = "MicroCTLike.Stale"
DEFAULT_TABLE_NAME = "MicroCTLike metrics"

#: (row key, column title, unit, description) of the metrics table, in display order.
COLUMNS = (
    ("volume", "Volume", "", "Volume node measured"),
    ("voi", "VOI", "", "Cylindrical VOI (15 mm diameter x 5 mm height)"),
    ("bv_tv", "BV/TV", "", "Bone volume fraction (bone voxels / VOI voxels)"),
    ("tb_th_mm", "Tb.Th (mm)", "mm", "Mean trabecular thickness (BoneJ local thickness)"),
    ("tb_th_sd_mm", "Tb.Th SD (mm)", "mm", "Standard deviation of the trabecular thickness"),
    ("tb_sp_mm", "Tb.Sp (mm)", "mm", "Mean trabecular separation (BoneJ local thickness of the marrow)"),
    ("tb_sp_sd_mm", "Tb.Sp SD (mm)", "mm", "Standard deviation of the trabecular separation"),
    ("threshold", "Threshold", "", "Threshold on the 8-bit VOI histogram"),
    ("threshold_method", "Threshold method", "", "How the threshold was chosen"),
    ("tb_sp_policy", "Tb.Sp policy", "", "How the marrow outside the VOI is treated"),
)
TITLES = {key: title for key, title, _, _ in COLUMNS}

_warmed_up = False


def warm_up_measurement() -> Optional[float]:
    """Compile the thickness kernels (numba) once per process on a tiny volume.

    Returns the seconds it took, or None when already done in this process. numba caches the
    compiled code on disk, so later Slicer sessions pay less.
    """
    global _warmed_up
    if _warmed_up:
        return None
    from ..morphometry import measure_trabecular

    start = time.perf_counter()
    z, y, x = np.mgrid[0:12, 0:12, 0:12]
    plates = ((x // 3) % 2 == 0).astype(np.uint8) * 255
    measure_trabecular(plates, spacing_xyz_mm=(0.1, 0.1, 0.1), threshold=128)
    _warmed_up = True
    return time.perf_counter() - start


def measure_volumes_in_rois(volume_nodes: Sequence, roi_nodes: Sequence, *, threshold="isodata",
                            tb_sp_policy: str = "margin", margin_mm: Optional[float] = None,
                            progress: Optional[Callable[[int, int, str], None]] = None) -> List[Dict[str, Any]]:
    """BV/TV, Tb.Th, Tb.Sp of every volume node in every ROI's cylinder, one row each.

    Rows hold ``volume``, ``voi`` (the VOI's role, else the ROI's name) and the metrics with
    units in the names, plus the threshold and the Tb.Sp policy used (so a saved table says
    how it was measured). ``progress(done, total, message)`` is called before each VOI.
    """
    from ..measurement import measure_in_voi
    from ..morphometry import DEFAULT_MARGIN_MM

    volume_nodes = [n for n in volume_nodes if n is not None]
    roi_nodes = [n for n in roi_nodes if n is not None]
    if not volume_nodes:
        raise InvalidVolumeError("select at least one volume to measure")
    if not roi_nodes:
        raise VOIError("place the standard VOIs (or select ROI nodes) before measuring")
    vois = [(node.GetAttribute(ROLE_ATTRIBUTE) or node.GetName(), cylinder_from_roi(node)) for node in roi_nodes]
    rows = []
    total = len(volume_nodes) * len(vois)
    for node in volume_nodes:
        volume = volume_from_node(node)
        for label, voi in vois:
            if progress is not None:
                progress(len(rows), total, f"{node.GetName()}, {label} VOI")
            result = measure_in_voi(volume, voi, threshold=threshold, tb_sp_policy=tb_sp_policy,
                                    margin_mm=DEFAULT_MARGIN_MM if margin_mm is None else margin_mm)
            rows.append({
                "volume": node.GetName(), "voi": label, "bv_tv": result.bv_tv, "tb_th_mm": result.tb_th_mm,
                "tb_th_sd_mm": result.tb_th_sd_mm, "tb_sp_mm": result.tb_sp_mm, "tb_sp_sd_mm": result.tb_sp_sd_mm,
                "threshold": "" if result.threshold is None else result.threshold,
                "threshold_method": result.threshold_method, "tb_sp_policy": result.tb_sp_policy,
            })
    if progress is not None:
        progress(total, total, "done")
    return rows


def find_metrics_table(*, scene=None):
    """The module's metrics table node (tagged with :data:`TABLE_ATTRIBUTE`), or None."""
    scene = _scene(scene)
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLTableNode")
        if node.GetAttribute(TABLE_ATTRIBUTE) == "1":
            return node
    return None


def metrics_table_node(rows: List[Dict[str, Any]], name: str = DEFAULT_TABLE_NAME, *, node=None, scene=None):
    """Write rows (one per VOI and volume) into the metrics table node and return it.

    ``node`` given: that table is filled; otherwise the module's table (see
    :func:`find_metrics_table`) is reused, or one is created. Known keys get the readable
    titles, units and descriptions of :data:`COLUMNS`; other keys are appended as they are.
    Numbers become double columns, everything else strings. The stale mark is cleared.
    """
    import vtk

    scene = _scene(scene)
    if node is None:
        node = find_metrics_table(scene=scene)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    node.SetAttribute(TABLE_ATTRIBUTE, "1")
    keys: List[str] = [key for key, *_ in COLUMNS if any(key in row for row in rows)]
    for row in rows:
        for key in row:
            if key not in keys:
                keys.append(key)
    was_modifying = node.StartModify()
    node.RemoveAllColumns()
    table = node.GetTable()
    for key in keys:
        numeric = all(isinstance(row.get(key), (int, float, np.floating, np.integer)) and not isinstance(row.get(key), bool)
                      for row in rows if key in row)
        array = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        array.SetName(TITLES.get(key, key))
        table.AddColumn(array)
    table.SetNumberOfRows(len(rows))
    for r, row in enumerate(rows):
        for c, key in enumerate(keys):
            value = row.get(key, "")
            column = table.GetColumn(c)
            if isinstance(column, vtk.vtkDoubleArray):
                column.SetValue(r, float(value) if value != "" else float("nan"))
            else:
                column.SetValue(r, str(value))
    for key, title, unit, description in COLUMNS:
        if key in keys:
            node.SetColumnUnitLabel(title, unit)
            node.SetColumnDescription(title, description)
    node.SetAttribute(STALE_ATTRIBUTE, "0")
    table.Modified()
    node.Modified()
    node.EndModify(was_modifying)
    return node


def table_rows(node) -> List[Dict[str, Any]]:
    """The table's rows as dicts keyed by column title (numbers as float)."""
    table = node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for c, name in enumerate(names):
            column = table.GetColumn(c)
            row[name] = column.GetValue(r) if column.IsA("vtkStringArray") else float(column.GetValue(r))
        rows.append(row)
    return rows


def mark_table_stale(node, stale: bool = True) -> None:
    """Mark (or unmark) the metrics table as not matching the VOIs any more."""
    if node is not None:
        node.SetAttribute(STALE_ATTRIBUTE, "1" if stale else "0")


def table_is_stale(node) -> bool:
    return node is not None and node.GetAttribute(STALE_ATTRIBUTE) == "1"


def export_table_csv(node, path):
    """Save the metrics table as CSV (titles with units in the header, atomic write); returns the path."""
    import csv
    from pathlib import Path

    from ..atomic import atomic_output

    rows = table_rows(node)
    table = node.GetTable()
    names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return path


def place_in_study(node, reference_node) -> None:
    """Put ``node`` beside ``reference_node`` in the subject hierarchy (under the input's study).

    When the reference sits under a study (DICOM import, or a study the user made), the
    output appears in the same study; otherwise both stay at the scene level.
    """
    import slicer

    scene = node.GetScene()
    if scene is None or reference_node is None:
        return
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None:
        return
    reference_item = sh.GetItemByDataNode(reference_node)
    if not reference_item:
        return
    parent = sh.GetItemParent(reference_item) or sh.GetSceneItemID()
    item = sh.GetItemByDataNode(node)
    if not item:  # Slicer's subject hierarchy plugins add items; a bare MRML scene does not
        sh.CreateItem(parent, node)
    elif sh.GetItemParent(item) != parent:
        sh.SetItemParent(item, parent)
