"""PNG montages: MDCT next to micro-CT, same physical field of view, one row per case.

Both volumes are sampled on one axial grid in LPS millimetres (linear interpolation
through each volume's own geometry), so a rotated or shifted MDCT shows the anatomy at
the same place as the micro-CT. Rendering uses matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

from .atomic import atomic_output
from .errors import InvalidParameterError
from .volume import Volume

#: display windows (HU): MDCT bone/trabecular window, micro-CT from bath to bone
MDCT_WINDOW_HU = (-200.0, 1000.0)
MICROCT_WINDOW_HU = (-400.0, 2600.0)


@dataclasses.dataclass
class AxialPanel:
    """Two co-registered axial images (rows = +y posterior, columns = +x left)."""

    label: str
    mdct: np.ndarray
    microct: np.ndarray
    extent_mm: Tuple[float, float, float, float]  # x0, x1, y1, y0 for imshow (y grows downwards)
    z_lps_mm: float


def sample_axial(volume: Volume, x_mm: np.ndarray, y_mm: np.ndarray, z_mm: float, *, order: int = 1) -> np.ndarray:
    """Values of ``volume`` on the axial LPS grid (len(y), len(x)) at height ``z_mm``; NaN outside."""
    xx, yy = np.meshgrid(x_mm, y_mm)
    points = np.stack([xx, yy, np.full_like(xx, z_mm)], axis=-1)
    index = volume.lps_to_index_zyx(points)
    values = ndimage.map_coordinates(
        volume.array.astype(np.float32, copy=False), np.moveaxis(index, -1, 0), order=order, mode="constant", cval=np.nan
    )
    return values


def axial_panel(
    mdct: Volume, microct: Volume, *, label: str = "", z_lps_mm: Optional[float] = None, max_pixels: int = 700
) -> AxialPanel:
    """Sample both volumes on the micro-CT's axial field of view at ``z_lps_mm`` (default: its middle)."""
    corners = microct.index_zyx_to_lps(np.array([[0, 0, 0], np.array(microct.shape_zyx) - 1], dtype=float))
    (x0, y0, z0), (x1, y1, z1) = corners
    if z_lps_mm is None:
        z_lps_mm = 0.5 * (z0 + z1)
    pixel_mm = max(microct.spacing_xyz_mm[0], max(abs(x1 - x0), abs(y1 - y0)) / max_pixels)
    x_mm = np.arange(min(x0, x1), max(x0, x1) + 1e-9, pixel_mm)
    y_mm = np.arange(min(y0, y1), max(y0, y1) + 1e-9, pixel_mm)
    return AxialPanel(
        label=label,
        mdct=sample_axial(mdct, x_mm, y_mm, z_lps_mm),
        microct=sample_axial(microct, x_mm, y_mm, z_lps_mm),
        extent_mm=(x_mm[0], x_mm[-1], y_mm[-1], y_mm[0]),
        z_lps_mm=float(z_lps_mm),
    )


def write_montage(
    panels: Sequence[AxialPanel],
    path: Union[str, os.PathLike],
    *,
    mdct_window_hu: Tuple[float, float] = MDCT_WINDOW_HU,
    microct_window_hu: Tuple[float, float] = MICROCT_WINDOW_HU,
    dpi: int = 110,
) -> Path:
    """Write a PNG (atomically): one row per panel, MDCT left, micro-CT right, in mm axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if not panels:
        raise InvalidParameterError("montage: no cases to draw")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidParameterError(f"{path}: montage must be a .png file")
    x0, x1, y1, y0 = panels[0].extent_mm
    aspect = abs(y1 - y0) / max(abs(x1 - x0), 1e-9)
    width_in = 8.0
    row_in = width_in / 2 * aspect + 0.5
    fig = Figure(figsize=(width_in, row_in * len(panels)), dpi=dpi, facecolor="black")
    axes: List = fig.subplots(len(panels), 2, squeeze=False)
    for row, panel in zip(axes, panels):
        for ax, image, window, title in (
            (row[0], panel.mdct, mdct_window_hu, "MDCT"),
            (row[1], panel.microct, microct_window_hu, "micro-CT"),
        ):
            ax.imshow(
                np.nan_to_num(image, nan=window[0]), cmap="gray", vmin=window[0], vmax=window[1],
                extent=panel.extent_mm, interpolation="nearest",
            )
            ax.set_title(f"{panel.label} {title}  z={panel.z_lps_mm:.1f} mm  [{window[0]:.0f}, {window[1]:.0f}] HU",
                         color="white", fontsize=7)
            ax.tick_params(colors="white", labelsize=6)
            ax.set_xlabel("x (mm, +left)", color="white", fontsize=6)
            ax.set_ylabel("y (mm, +posterior)", color="white", fontsize=6)
    fig.tight_layout()
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, facecolor=fig.get_facecolor())
    return path
