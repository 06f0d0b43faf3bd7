"""ImageJ-compatible conversion of a grey volume to 8 bits (Image > Type > 8-bit, scaled).

ImageJ 1.53t maps the whole stack through one display range (min, max):

* 16-bit (``ShortProcessor``): the range is clamped to [0, 65535] and truncated to int, then
  ``v8 = min(255, (int)(max(v - min, 0) * 256 / (max - min + 1) + 0.5))``.
* 32-bit (``FloatProcessor``): the range is stored as float32, then in double
  ``v8 = min(255, (int)(max(v - min, 0) * 255 / (max - min) + 0.5))``; Java's ``(int)`` turns
  NaN into 0 and +Inf or huge values into Integer.MAX_VALUE (then 255).

Reference vectors: Testing/Data/bonej/threshold/conv8_*.npz (SCIENCE.md section 3).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidParameterError, InvalidVolumeError

_INT_MAX = 2 ** 31 - 1
_INT_MIN = -(2 ** 31)


def java_int(values: np.ndarray) -> np.ndarray:
    """Java's ``(int)`` cast of doubles: truncation toward zero, NaN -> 0, saturation."""
    v = np.asarray(values, dtype=np.float64)
    out = np.trunc(np.nan_to_num(v, nan=0.0, posinf=_INT_MAX, neginf=_INT_MIN))
    return np.clip(out, _INT_MIN, _INT_MAX).astype(np.int64)


def imagej_kind(dtype) -> str:
    """How ImageJ would hold this dtype: ``"8-bit"``, ``"16-bit"`` (incl. signed 16-bit,
    stored with an offset of 32768) or ``"32-bit"``."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8 or dtype == bool:
        return "8-bit"
    if dtype in (np.dtype(np.uint16), np.dtype(np.int16)):
        return "16-bit"
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
        return "32-bit"
    raise InvalidVolumeError(f"cannot convert a volume of dtype {dtype} to 8 bits; give integers or floats")


def default_display_range(image: np.ndarray) -> tuple[float, float]:
    """ImageJ's display range after opening: the min and max of the finite voxel values."""
    finite = np.isfinite(image) if np.issubdtype(image.dtype, np.floating) else None
    values = image[finite] if finite is not None else image
    if values.size == 0:
        raise InvalidVolumeError("the volume has no finite value to set a display range from")
    return float(values.min()), float(values.max())


def display_range_used(image_dtype, display_range) -> tuple[float, float]:
    """The (min, max) the ImageJ processor actually holds after ``setDisplayRange``.

    16-bit: clamped to [0, 65535] and truncated to int (signed 16-bit ranges are given in
    signed values and shifted by 32768 internally). 32-bit: rounded to float32.
    """
    lo, hi = (float(v) for v in display_range)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise InvalidParameterError(f"display_range must be finite (min, max) with min <= max, got {display_range!r}")
    kind = imagej_kind(image_dtype)
    if kind == "16-bit":
        offset = 32768.0 if np.dtype(image_dtype) == np.int16 else 0.0
        lo_s = float(int(min(max(lo + offset, 0.0), 65535.0)))
        hi_s = float(int(min(max(hi + offset, 0.0), 65535.0)))
        return lo_s - offset, hi_s - offset
    if kind == "32-bit":
        return float(np.float32(lo)), float(np.float32(hi))
    return lo, hi


def to_8bit(image, *, display_range=None) -> np.ndarray:
    """Convert a grey volume to uint8 exactly as ImageJ 1.53t does ("Scale when converting").

    Parameters
    ----------
    image : ndarray
        uint8 / bool (returned as uint8; bool becomes 0/255), uint16 or int16 (ImageJ 16-bit,
        int16 as signed 16-bit), any other integer or float (ImageJ 32-bit, via float32).
    display_range : (min, max), optional, keyword-only
        In the image's values (HU for int16 CT). Default: the min and max of the finite
        voxels of the whole stack, as ImageJ sets it when a stack is opened.

    Returns
    -------
    ndarray of uint8, same shape

    Examples
    --------
    >>> to_8bit(np.array([[[1000, 2000, 3000]]], np.uint16), display_range=(1000, 3000)).tolist()
    [[[0, 128, 255]]]
    """
    array = np.asarray(image)
    if array.size == 0:
        raise InvalidVolumeError("the volume is empty")
    kind = imagej_kind(array.dtype)
    if kind == "8-bit":
        return np.where(array, 255, 0).astype(np.uint8) if array.dtype == bool else array.astype(np.uint8, copy=True)
    if display_range is None:
        display_range = default_display_range(array)
    lo, hi = display_range_used(array.dtype, display_range)
    if kind == "16-bit":
        offset = 32768 if array.dtype == np.int16 else 0
        stored = array.astype(np.int64) + offset
        lo_i, hi_i = int(lo) + offset, int(hi) + offset
        scale = 256.0 / (hi_i - lo_i + 1)
        value = np.maximum(stored - lo_i, 0)
        v8 = java_int(value * scale + 0.5)
    else:
        pixels = array.astype(np.float32).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = pixels - lo
            value = np.where(value < 0, 0.0, value)  # NaN stays NaN, as Java's (v < 0) test
            v8 = java_int(value * (255.0 / (hi - lo) if hi != lo else math.inf) + 0.5)
    return np.minimum(v8, 255).clip(0).astype(np.uint8)
