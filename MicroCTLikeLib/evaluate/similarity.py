"""Image similarity as the study measured it: SSIM on 8-bit images, on a common plane grid.

SSIM uses Wang et al.'s settings (Gaussian window sigma 1.5, population covariance,
data range 255) through scikit-image; its defaults give other numbers. Each image is
mapped to 8 bits through the intensity window of its modality (the windows the generator
was trained with), so MDCT and micro-CT are compared the way a reader sees them.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import InvalidParameterError
from ..volume import Volume


def window_to_8bit(array: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Linear map of ``window = (low, high)`` to 0..255 (clipped), uint8."""
    low, high = float(window[0]), float(window[1])
    if not high > low:
        raise InvalidParameterError(f"window must have low < high, got {window}")
    scaled = (np.asarray(array, dtype=np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def ssim_8bit(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 8-bit images (2-D or 3-D stacks of slices: mean over slices).

    Gaussian window sigma 1.5, population covariance, data range 255 (Wang et al. 2004).
    """
    from skimage.metrics import structural_similarity

    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InvalidParameterError(f"SSIM needs images of one shape, got {a.shape} and {b.shape}")
    slices_a = a[None] if a.ndim == 2 else a
    slices_b = b[None] if b.ndim == 2 else b
    values = [
        structural_similarity(x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=255)
        for x, y in zip(slices_a, slices_b)
    ]
    return float(np.mean(values))


def sample_on_grid(volume: Volume, reference: Volume, *, order: int = 1, fill: Optional[float] = None,
                   antialias: bool = True) -> np.ndarray:
    """Values of ``volume`` at the voxel centres of ``reference`` (float32, reference's shape).

    A finer source is low-pass filtered first (Gaussian whose FWHM spans the coarser pixel),
    so comparing a 52 um micro-CT with a 0.1 mm image does not alias.
    """
    from scipy import ndimage

    source = np.asarray(volume.array, dtype=np.float32)
    if antialias:
        ratio = np.array(reference.spacing_zyx_mm) / np.array(volume.spacing_zyx_mm)
        sigma = [np.sqrt(r * r - 1) / 2.355 if r > 1.01 else 0.0 for r in ratio]
        if any(sigma):
            source = ndimage.gaussian_filter(source, sigma)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in reference.shape_zyx], indexing="ij"), axis=-1)
    index = volume.lps_to_index_zyx(reference.index_zyx_to_lps(grid))
    fill_value = float(source.min()) if fill is None else float(fill)
    values = ndimage.map_coordinates(source, np.moveaxis(index, -1, 0), order=order, mode="constant", cval=fill_value)
    return values.astype(np.float32)
