"""Metrics in VOIs of volume nodes, and the table node that shows them."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import InvalidVolumeError, VOIError
from .nodes import _scene, volume_from_node
from .vois import cylinder_from_roi


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



def measure_volumes_in_rois(volume_nodes: Sequence, roi_nodes: Sequence, *, threshold="isodata",
                            tb_sp_policy: str = "margin", margin_mm: Optional[float] = None) -> List[Dict[str, Any]]:
    """BV/TV, Tb.Th, Tb.Sp of every volume node in every ROI's cylinder, one row each.

    Rows hold ``volume``, ``voi`` and the metrics with units in the names, plus the
    threshold and the Tb.Sp policy used (so a saved table says how it was measured).
    """
    from ..measurement import measure_in_voi
    from ..morphometry import DEFAULT_MARGIN_MM

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
