"""Vertebral body geometry as signed distances (mm, positive inside).

The body is an elliptic cylinder (width W along x, depth D along y, height H along z) with
an optional posterior notch (a circle cut from the posterior wall, where the vertebral
foramen sits), a cortical shell of thickness t_c on the side wall and endplates of
thickness t_e top and bottom. Orientation is LPS with identity direction: the anterior
edge is at y = centre_y - D/2 (low y), superior is +z.

Signed distances are first-order (value / |gradient|) for the ellipse: exact on the
boundary, accurate to far below a micro-CT voxel over the thin shell where they are used.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class BodyGeometry:
    """Vertebral body in LPS mm (identity orientation)."""

    centre_lps_mm: Tuple[float, float, float]
    width_mm: float
    depth_mm: float
    height_mm: float
    cortical_thickness_mm: float
    endplate_thickness_mm: float
    notch: bool = False
    notch_radius_mm: float = 8.0
    notch_depth_mm: float = 2.0

    @classmethod
    def from_parameters(cls, params: Dict[str, Any]) -> "BodyGeometry":
        return cls(
            centre_lps_mm=tuple(params["body_centre_lps_mm"]),
            width_mm=params["body_width_mm"],
            depth_mm=params["body_depth_mm"],
            height_mm=params["body_height_mm"],
            cortical_thickness_mm=params["cortical_thickness_mm"],
            endplate_thickness_mm=params["endplate_thickness_mm"],
            notch=params["posterior_notch"],
            notch_radius_mm=params["posterior_notch_radius_mm"],
            notch_depth_mm=params["posterior_notch_depth_mm"],
        )

    @property
    def anterior_edge_y_mm(self) -> float:
        """LPS y of the anterior (outer) surface on the AP midline."""
        return self.centre_lps_mm[1] - self.depth_mm / 2

    @property
    def posterior_edge_y_mm(self) -> float:
        """LPS y of the posterior (outer) surface on the AP midline (notch included)."""
        y = self.centre_lps_mm[1] + self.depth_mm / 2
        return y - self.notch_depth_mm if self.notch else y

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["centre_lps_mm"] = [float(v) for v in self.centre_lps_mm]
        d["anterior_edge_y_mm"] = self.anterior_edge_y_mm
        d["posterior_edge_y_mm"] = self.posterior_edge_y_mm
        d["midline_x_mm"] = float(self.centre_lps_mm[0])
        d["mid_height_z_mm"] = float(self.centre_lps_mm[2])
        return d

    # ------------------------------------------------------------------ signed distances
    def sdf_xy(self, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        """Signed distance (mm, + inside) to the body outline in the axial plane."""
        a, b = self.width_mm / 2, self.depth_mm / 2
        dx = np.asarray(x_mm, dtype=np.float64) - self.centre_lps_mm[0]
        dy = np.asarray(y_mm, dtype=np.float64) - self.centre_lps_mm[1]
        r = np.sqrt((dx / a) ** 2 + (dy / b) ** 2)
        grad = np.sqrt((dx / a**2) ** 2 + (dy / b**2) ** 2)
        sdf = (1.0 - r) * r / np.maximum(grad, 1e-12)  # (1 - r) / |grad r|, grad r = (dx/a^2, dy/b^2)/r
        sdf = np.where(r < 1e-9, min(a, b), sdf)
        if self.notch:
            notch_y = self.centre_lps_mm[1] + b + self.notch_radius_mm - self.notch_depth_mm
            outside_notch = np.hypot(dx, dy + self.centre_lps_mm[1] - notch_y) - self.notch_radius_mm
            sdf = np.minimum(sdf, outside_notch)
        return sdf.astype(np.float32)

    def sdf_z(self, z_mm: np.ndarray) -> np.ndarray:
        """Signed distance (mm, + inside) to the endplate planes."""
        return (self.height_mm / 2 - np.abs(np.asarray(z_mm, dtype=np.float64) - self.centre_lps_mm[2])).astype(np.float32)

    def body_and_cancellous_sdf(self, sdf_xy: np.ndarray, sdf_z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Broadcast (y, x) and (z,) distances to the body and to its cancellous core.

        Returns ``(sdf_body, sdf_cancellous)`` of shape (z, y, x), float32 mm: the outer
        surface, and the inner surface of the cortex/endplates.
        """
        xy = sdf_xy[None, :, :]
        z = sdf_z[:, None, None]
        body = np.minimum(xy, z)
        cancellous = np.minimum(xy - np.float32(self.cortical_thickness_mm), z - np.float32(self.endplate_thickness_mm))
        return body, cancellous
