"""Cylindrical volume of interest (VOI): geometry only, in LPS millimetres.

The study measures trabecular bone in cylinders 15 mm across and 5 mm high whose axis
follows the vertebral body's superior-inferior axis (Bioengineering 2023, 10(6):716,
Figure 5). A :class:`CylinderVOI` is pure geometry; :mod:`MicroCTLikeLib.voi.mask` turns it
into voxels of a :class:`~MicroCTLikeLib.volume.Volume`.

Slicer has no cylinder markup, so the Slicer module drives a ``vtkMRMLMarkupsROINode`` of
size ``diameter x diameter x height`` whose local z axis is the cylinder axis.
:meth:`CylinderVOI.object_to_world` gives that ROI's object-to-world matrix and
:meth:`CylinderVOI.from_object_to_world` reads a cylinder back from one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from ..errors import VOIError

#: LPS <-> RAS: flip the first two physical coordinates (the matrix is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

#: The study's VOI size (mm).
STANDARD_DIAMETER_MM = 15.0
STANDARD_HEIGHT_MM = 5.0


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """Convert (..., 3) RAS points or vectors to LPS (and back: the map is an involution)."""
    return np.asarray(points, dtype=float) @ LPS_TO_RAS


lps_to_ras = ras_to_lps


def _vector3(value: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(value, dtype=float).reshape(-1)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise VOIError(f"{what} must be three finite numbers, got {value!r}")
    return array


@dataclasses.dataclass(frozen=True)
class CylinderVOI:
    """A right circular cylinder in LPS patient coordinates.

    Parameters
    ----------
    centre_lps_mm : tuple of 3 floats
        Centre of the cylinder (mid-way between its two faces), LPS mm.
    axis_lps : tuple of 3 floats
        Direction of the cylinder axis (normalised on construction; the sign carries no
        meaning for the shape but is kept so a round trip is exact).
    diameter_mm, height_mm : float
        Size in mm (> 0); defaults are the study's 15 mm x 5 mm.
    name : str
        Free label ("superior", "inferior", ...), used in reports and file names.

    Examples
    --------
    >>> voi = CylinderVOI((0.0, 10.0, 5.0), (0.0, 0.0, 1.0))
    >>> round(voi.volume_mm3, 1)
    883.6
    >>> bool(voi.contains([0.0, 17.4, 7.4]))
    True
    """

    centre_lps_mm: Tuple[float, float, float]
    axis_lps: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    diameter_mm: float = STANDARD_DIAMETER_MM
    height_mm: float = STANDARD_HEIGHT_MM
    name: str = ""

    def __post_init__(self) -> None:
        centre = _vector3(self.centre_lps_mm, "VOI centre")
        axis = _vector3(self.axis_lps, "VOI axis")
        norm = float(np.linalg.norm(axis))
        if norm < 1e-9:
            raise VOIError("VOI axis must be a non-zero vector (the superior-inferior direction)")
        for what, value in (("diameter_mm", self.diameter_mm), ("height_mm", self.height_mm)):
            if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value > 0):
                raise VOIError(f"VOI {what} must be a positive number of millimetres, got {value!r}")
        object.__setattr__(self, "centre_lps_mm", tuple(float(v) for v in centre))
        object.__setattr__(self, "axis_lps", tuple(float(v) for v in axis / norm))
        object.__setattr__(self, "diameter_mm", float(self.diameter_mm))
        object.__setattr__(self, "height_mm", float(self.height_mm))
        object.__setattr__(self, "name", str(self.name))

    # ------------------------------------------------------------------ shape
    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0

    @property
    def volume_mm3(self) -> float:
        """Analytic volume pi r^2 h (mm^3)."""
        return math.pi * self.radius_mm**2 * self.height_mm

    def contains(self, points_lps: np.ndarray) -> np.ndarray:
        """Whether each of the (..., 3) LPS points (mm) lies inside or on the cylinder.

        Returns a bool array of shape ``points.shape[:-1]``.
        """
        points = np.asarray(points_lps, dtype=float)
        if points.shape[-1:] != (3,):
            raise VOIError(f"points must have shape (..., 3), got {points.shape}")
        offset = points - np.asarray(self.centre_lps_mm)
        along = offset @ np.asarray(self.axis_lps)
        radial_sq = np.einsum("...i,...i->...", offset, offset) - along**2
        eps = 1e-9
        return (np.abs(along) <= self.height_mm / 2 + eps) & (radial_sq <= self.radius_mm**2 + eps)

    # ------------------------------------------------------------------ frame
    def frame_lps(self) -> np.ndarray:
        """3x3 rotation whose columns are the cylinder's local x, y, z axes in LPS.

        z is the cylinder axis; x is the LPS x axis (patient Left) made orthogonal to it
        (LPS y when the axis is nearly along x), so that an untilted VOI gets the identity.
        """
        axis = np.asarray(self.axis_lps)
        reference = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        x = reference - (reference @ axis) * axis
        x /= np.linalg.norm(x)
        y = np.cross(axis, x)
        return np.column_stack([x, y, axis])

    def object_to_world(self, *, world: str = "lps") -> np.ndarray:
        """4x4 matrix from the cylinder's local frame (origin at its centre, z = axis) to
        world mm, ``world="lps"`` or ``"ras"`` (Slicer's ``GetObjectToWorldMatrix``).

        A ``vtkMRMLMarkupsROINode`` with this object-to-world matrix and size
        :meth:`roi_size_mm` encloses the cylinder exactly.
        """
        matrix = np.eye(4)
        matrix[:3, :3] = self.frame_lps()
        matrix[:3, 3] = self.centre_lps_mm
        if _world(world) == "ras":
            flip = np.diag([-1.0, -1.0, 1.0, 1.0])
            matrix = flip @ matrix @ flip  # keep a proper rotation: flip local x, y as well
        return matrix

    def roi_size_mm(self) -> Tuple[float, float, float]:
        """Size of the enclosing ROI box in its local frame: (diameter, diameter, height)."""
        return (self.diameter_mm, self.diameter_mm, self.height_mm)

    @classmethod
    def from_object_to_world(
        cls, matrix: np.ndarray, size_mm: Sequence[float], *, world: str = "lps", name: str = "", tol_mm: float = 1e-3
    ) -> "CylinderVOI":
        """The cylinder inscribed in an ROI box given by its object-to-world matrix and size.

        The ROI's local z column is the cylinder axis, its centre the cylinder centre;
        ``size_mm`` = (sx, sy, sz) must have sx == sy (the diameter); sz is the height.
        """
        matrix = np.asarray(matrix, dtype=float)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise VOIError(f"ROI matrix must be a finite 4x4 matrix, got shape {matrix.shape}")
        size = _vector3(size_mm, "ROI size")
        if abs(size[0] - size[1]) > tol_mm:
            raise VOIError(
                f"ROI size {tuple(size)} mm is not square in its local x-y plane; a cylinder VOI needs "
                "equal x and y sizes (the diameter) and z = height, e.g. 15 x 15 x 5 mm"
            )
        if _world(world) == "ras":
            flip = np.diag([-1.0, -1.0, 1.0, 1.0])
            matrix = flip @ matrix @ flip
        rotation = matrix[:3, :3]
        # Slicer may keep scale in the matrix only through parent transforms; normalise columns.
        scales = np.linalg.norm(rotation, axis=0)
        if np.any(scales < 1e-9):
            raise VOIError("ROI matrix is singular")
        if not np.allclose(scales, scales[0], rtol=1e-4):
            raise VOIError(f"ROI matrix scales its axes differently ({scales}); cannot map to a cylinder")
        axis = rotation[:, 2] / scales[2]
        return cls(
            centre_lps_mm=tuple(matrix[:3, 3]),
            axis_lps=tuple(axis),
            diameter_mm=float(size[0] * scales[0]),
            height_mm=float(size[2] * scales[2]),
            name=name,
        )

    def corners_lps(self) -> np.ndarray:
        """(8, 3) LPS corners of the enclosing box (the ROI), mm."""
        r, half_h = self.radius_mm, self.height_mm / 2
        local = np.array([[sx * r, sy * r, sz * half_h] for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)])
        return local @ self.frame_lps().T + np.asarray(self.centre_lps_mm)

    def extent_along(self, direction: np.ndarray) -> Tuple[float, float]:
        """Exact (min, max) of ``direction . p`` over the cylinder, for any (non-unit) 3-vector."""
        w = _vector3(direction, "direction")
        axis = np.asarray(self.axis_lps)
        along = float(w @ axis)
        across = math.sqrt(max(float(w @ w) - along**2, 0.0))
        centre = float(w @ np.asarray(self.centre_lps_mm))
        half = self.radius_mm * across + self.height_mm / 2 * abs(along)
        return centre - half, centre + half

    def bounds_lps(self) -> np.ndarray:
        """(2, 3) exact axis-aligned LPS bounds [min; max] of the cylinder, mm."""
        limits = np.array([self.extent_along(e) for e in np.eye(3)])
        return limits.T.copy()

    # ------------------------------------------------------------------ transforms / IO
    def translated(self, offset_lps_mm: Sequence[float], *, name: str | None = None) -> "CylinderVOI":
        """The same cylinder moved by ``offset_lps_mm``."""
        centre = np.asarray(self.centre_lps_mm) + _vector3(offset_lps_mm, "offset")
        return dataclasses.replace(self, centre_lps_mm=tuple(centre), name=self.name if name is None else name)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready description (LPS, with the RAS centre and axis for Slicer users)."""
        return {
            "name": self.name,
            "shape": "cylinder",
            "centre_lps_mm": [round(v, 6) for v in self.centre_lps_mm],
            "axis_lps": [round(v, 9) for v in self.axis_lps],
            "centre_ras_mm": [round(v, 6) for v in lps_to_ras(self.centre_lps_mm)],
            "axis_ras": [round(v, 9) for v in lps_to_ras(self.axis_lps)],
            "diameter_mm": self.diameter_mm,
            "height_mm": self.height_mm,
            "volume_mm3": round(self.volume_mm3, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CylinderVOI":
        """Inverse of :meth:`to_dict`; accepts LPS keys or, failing those, RAS keys."""
        try:
            if "centre_lps_mm" in data:
                centre = data["centre_lps_mm"]
                axis = data.get("axis_lps", (0.0, 0.0, 1.0))
            else:
                centre = ras_to_lps(data["centre_ras_mm"])
                axis = ras_to_lps(data.get("axis_ras", (0.0, 0.0, 1.0)))
            return cls(
                centre_lps_mm=tuple(centre),
                axis_lps=tuple(axis),
                diameter_mm=data.get("diameter_mm", STANDARD_DIAMETER_MM),
                height_mm=data.get("height_mm", STANDARD_HEIGHT_MM),
                name=data.get("name", ""),
            )
        except (KeyError, TypeError) as error:
            raise VOIError(f"not a cylinder VOI description ({error}); expected centre_lps_mm or centre_ras_mm") from None


def _world(world: str) -> str:
    value = str(world).lower()
    if value not in ("lps", "ras"):
        raise VOIError(f"world must be 'lps' or 'ras', got {world!r}")
    return value
