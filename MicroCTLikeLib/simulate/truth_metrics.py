"""Ground-truth metrics written into each case's truth.json.

HOOK FOR THE MORPHOMETRY ENGINE: :func:`truth_metrics_hook` is the one place where truth
VOI metrics are computed. Today it places the two standard VOIs from the *known* body
geometry (SCIENCE.md section 4) and counts BV/TV in the binary truth. When
``MicroCTLikeLib.morphometry`` has a stable API, add Tb.Th and Tb.Sp (BoneJ-exact) per VOI
where marked below, or pass another callable as ``write_cohort(..., metrics_hook=...)``.
"""

from __future__ import annotations

from typing import Any, Dict, List, TYPE_CHECKING

import numpy as np

from ..volume import Volume

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


def cylinder_mask(volume: Volume, voi: Dict[str, Any]) -> np.ndarray:
    """Boolean mask of voxel centres inside an axis-aligned (z) cylinder VOI.

    Raises nothing; a VOI partly outside the volume simply holds fewer voxels (the caller
    compares with the full cylinder volume to notice).
    """
    nz, ny, nx = volume.shape_zyx
    cx, cy, cz = voi["centre_lps_mm"]
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij", sparse=True)
    # identity-direction volumes only (the simulated micro-CT and truth)
    sx, sy, sz = volume.spacing_xyz_mm
    ox, oy, oz = volume.origin_lps_mm
    x, y, z = ox + i * sx, oy + j * sy, oz + k * sz
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    return (r2 <= (voi["diameter_mm"] / 2) ** 2) & (np.abs(z - cz) <= voi["height_mm"] / 2)


def truth_metrics_hook(specimen: "Specimen") -> Dict[str, Any]:
    """Truth metrics of the standard VOIs (dict merged into truth.json as ``"voi_truth"``).

    Returns
    -------
    dict with ``"vois"``: a list of {geometry..., ``bv_tv``, ``voxels_inside``,
    ``complete`` (the whole cylinder lies inside the simulated volume)}.
    """
    truth = specimen.truth_binary
    if not np.allclose(truth.direction_lps, np.eye(3)):
        return {"vois": [], "note": "truth volume is not axis-aligned; VOI metrics skipped"}
    voxel_volume = float(np.prod(truth.spacing_xyz_mm))
    expected_voxels = np.pi * (VOI_DIAMETER_MM / 2) ** 2 * VOI_HEIGHT_MM / voxel_volume
    results = []
    for voi in standard_voi_geometry(specimen.truth["body"]):
        mask = cylinder_mask(truth, voi)
        n = int(mask.sum())
        entry = dict(voi)
        entry["voxels_inside"] = n
        entry["complete"] = bool(n >= 0.99 * expected_voxels)
        entry["bv_tv"] = float((truth.array[mask] >= 128).mean()) if n else None
        # MORPHOMETRY HOOK: add entry["tb_th_mm"], entry["tb_sp_mm"] (and the mode used)
        # from MicroCTLikeLib.morphometry here once its API is final.
        results.append(entry)
    return {"vois": results, "method": "voxel-centre cylinder on the binary truth (BV/TV only so far)"}
