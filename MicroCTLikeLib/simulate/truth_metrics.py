"""Ground-truth metrics written into each case's truth.json.

:func:`truth_metrics_hook` is the one place where truth VOI metrics are computed: it places
the two standard VOIs from the *known* body geometry (SCIENCE.md section 4) and measures
BV/TV, Tb.Th and Tb.Sp BoneJ-exactly on the binary truth. Pass another callable as
``write_cohort(..., metrics_hook=...)`` to record something else.
"""

from __future__ import annotations

from typing import Any, Dict, List, TYPE_CHECKING


if TYPE_CHECKING:  # pragma: no cover
    from .specimen import Specimen

#: standard VOI (study's Figure 5): 15 mm diameter, 5 mm high, centre 12.5 mm posterior of
#: the anterior edge on the AP midline, one VOI above and one below mid-height
VOI_DIAMETER_MM = 15.0
VOI_HEIGHT_MM = 5.0
VOI_CENTRE_FROM_ANTERIOR_MM = 12.5


def standard_voi_geometry(body: Dict[str, Any], *, offset_mm: float = 0.0) -> List[Dict[str, Any]]:
    """The two standard VOIs from a truth body dict (``truth["body"]``), in LPS mm.

    Each VOI spans mid-height to +-(offset + 5) mm ... +-offset mm; the axis is +z
    (superior), the simulated body's superior-inferior axis.
    """
    x = body["midline_x_mm"]
    y = body["anterior_edge_y_mm"] + VOI_CENTRE_FROM_ANTERIOR_MM
    z_mid = body["mid_height_z_mm"]
    vois = []
    for name, sign in (("superior", 1.0), ("inferior", -1.0)):
        z = z_mid + sign * (offset_mm + VOI_HEIGHT_MM / 2)
        vois.append(
            {
                "name": name,
                "centre_lps_mm": [float(x), float(y), float(z)],
                "axis_lps": [0.0, 0.0, 1.0],
                "diameter_mm": VOI_DIAMETER_MM,
                "height_mm": VOI_HEIGHT_MM,
            }
        )
    return vois


def truth_metrics_hook(specimen: "Specimen") -> Dict[str, Any]:
    """Truth metrics of the standard VOIs (merged into truth.json as ``"voi_truth"``).

    Each standard VOI (placed from the *known* body geometry) is measured BoneJ-exactly on
    the binary truth (bone = 255) with the default Tb.Sp policy (maps on the VOI plus a
    margin, statistics inside the cylinder).

    Returns
    -------
    dict with ``"vois"``: a list of {geometry..., ``complete`` (the cylinder lies inside the
    simulated volume), ``bv_tv``, ``tb_th_mm``, ``tb_th_sd_mm``, ``tb_sp_mm``, ...} and
    ``"method"``.
    """
    from ..errors import VOIError
    from ..measurement import measure_in_voi
    from ..voi import CylinderVOI

    results = []
    for geometry in standard_voi_geometry(specimen.truth["body"]):
        voi = CylinderVOI(geometry["centre_lps_mm"], geometry["axis_lps"], geometry["diameter_mm"],
                          geometry["height_mm"], name=geometry["name"])
        entry: Dict[str, Any] = dict(geometry)
        try:
            result = measure_in_voi(specimen.truth_binary, voi)
        except VOIError as error:  # a VOI the simulated block does not hold: say so, measure nothing
            entry.update(complete=False, note=str(error))
        else:
            entry.update(complete=True, **{k: v for k, v in result.as_dict().items()
                                           if k.startswith(("bv_tv", "tb_", "voi_voxel", "bone_voxel"))})
            entry.update(tb_sp_policy=result.tb_sp_policy, margin_mm=result.margin_mm)
        results.append(entry)
    return {"vois": results,
            "method": "BoneJ-exact morphometry (MicroCTLikeLib.measurement.measure_in_voi) on the binary truth, "
                      "standard VOIs from the known body geometry, Tb.Sp policy 'margin'"}
