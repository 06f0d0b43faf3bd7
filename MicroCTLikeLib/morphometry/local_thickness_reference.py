"""Slow, literal reference of BoneJ's local thickness, for tests on small volumes only.

Each step is written the plainest way, independent of the numba kernels: scipy's EDT,
brute-force templates, a literal 26-neighbour ridge test, full-ball painting of every ridge
point, the clean-up as a vectorised float32 sum in Java's neighbour order. Use
:func:`MicroCTLikeLib.morphometry.local_thickness.local_thickness_map` for real work.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from ..errors import InvalidVolumeError
from .local_thickness import _validate_binary, _validate_pixel_width, phase_of_binary

# Clean_Up_Local_Thickness's neighbour order, (dx, dy, dz), copied from the reference README.
CLEANUP_ORDER_DXYZ = (
    (0, 0, -1), (0, 0, 1), (0, -1, 0), (0, 1, 0), (-1, 0, 0), (1, 0, 0),
    (0, 1, -1), (0, 1, 1), (1, -1, 0), (1, 1, 0), (-1, 0, 1), (1, 0, 1),
    (0, -1, -1), (0, -1, 1), (-1, -1, 0), (-1, 1, 0), (-1, 0, -1), (1, 0, -1),
    (1, 1, 1), (1, -1, 1), (-1, 1, 1), (-1, -1, 1), (1, 1, -1), (1, -1, -1),
    (-1, 1, -1), (-1, -1, -1),
)
_NEIGHBOURS_ZYX = [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)]


def ball_offsets(r_sq: int) -> np.ndarray:
    """All integer offsets (dz, dy, dx) with dz^2 + dy^2 + dx^2 <= r_sq, shape (n, 3)."""
    r = int(np.floor(np.sqrt(r_sq))) + 1
    g = np.arange(-r, r + 1)
    dz, dy, dx = np.meshgrid(g, g, g, indexing="ij")
    inside = dz ** 2 + dy ** 2 + dx ** 2 <= r_sq
    return np.stack([dz[inside], dy[inside], dx[inside]], axis=1)


def template_brute_force(r_sq: int) -> tuple[int, int, int]:
    """(face, edge, corner) squared radii whose neighbour ball holds the grid ball B(0, r_sq)."""
    pts = ball_offsets(r_sq)
    return tuple(int(((pts - np.array(n)) ** 2).sum(axis=1).max())
                 for n in ((0, 0, 1), (0, 1, 1), (1, 1, 1)))


def _shifted(array: np.ndarray, offset, fill) -> np.ndarray:
    """``out[p] = array[p + offset]`` where p + offset is inside the image, else ``fill``."""
    padded = np.pad(array, 1, constant_values=fill)
    dz, dy, dx = offset
    nz, ny, nx = array.shape
    return padded[1 + dz:1 + dz + nz, 1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]


def local_thickness_map_reference(binary, *, pixel_width_mm: float = 1.0, inverse: bool = False) -> np.ndarray:
    """Same contract as :func:`~.local_thickness.local_thickness_map`, written literally."""
    array = _validate_binary(binary)
    width = _validate_pixel_width(pixel_width_mm)
    phase = phase_of_binary(array, inverse=inverse)
    if not phase.any():
        return np.full(phase.shape, np.nan, dtype=np.float32)
    if phase.all():
        raise InvalidVolumeError("the measured phase fills the whole image, so no distance to the other phase exists")

    # Step 2: EDT (border is not background), stored as float32 as EDT_S1D does.
    d = ndimage.distance_transform_edt(phase).astype(np.float32)
    # Step 3: R = (int)(d*d + 0.5f) in float32 arithmetic.
    r_sq = np.where(phase, (d * d + np.float32(0.5)).astype(np.int64), 0)

    templates = {int(r): template_brute_force(int(r)) for r in np.unique(r_sq[phase])}
    t_of = np.zeros((3, int(r_sq.max()) + 1), dtype=np.int64)
    for r, t in templates.items():
        t_of[:, r] = t
    ridge = phase.copy()
    for offset in _NEIGHBOURS_ZYX:
        cls = sum(abs(o) for o in offset) - 1
        neighbour_r = _shifted(r_sq, offset, 0)  # out-of-image neighbours never contain
        ridge &= ~(neighbour_r >= t_of[cls][r_sq])

    # Step 4: paint every ridge ball in full, keeping the max R.
    s = np.zeros(phase.shape, dtype=np.int64)
    shape = np.array(phase.shape)
    ball_cache: dict[int, np.ndarray] = {}
    for p in np.argwhere(ridge):
        r = int(r_sq[tuple(p)])
        offsets = ball_cache.setdefault(r, ball_offsets(r))
        pts = p + offsets
        pts = pts[np.all((pts >= 0) & (pts < shape), axis=1)]
        idx = tuple(pts.T)
        s[idx] = np.maximum(s[idx], r)
    lt = (2.0 * np.sqrt(s.astype(np.float64))).astype(np.float32)

    # Step 5: clean-up on the unmasked map, reading original values only.
    nonzero = lt != 0
    touches_zero = np.zeros(phase.shape, dtype=bool)
    for offset in _NEIGHBOURS_ZYX:
        touches_zero |= _shifted(~nonzero, offset, False)
    surface = nonzero & touches_zero
    interior = (lt > 0) & ~surface
    total = np.zeros(phase.shape, dtype=np.float32)
    count = np.zeros(phase.shape, dtype=np.int64)
    for dx, dy, dz in CLEANUP_ORDER_DXYZ:
        use = _shifted(interior, (dz, dy, dx), False)
        total = np.where(use, total + _shifted(lt, (dz, dy, dx), np.float32(0)), total).astype(np.float32)
        count += use
    mean = (total / np.maximum(count, 1).astype(np.float32)).astype(np.float32)
    cleaned = np.where(surface & (count > 0), mean, lt).astype(np.float32)

    # Steps 6-7: mask to the phase, calibrate by the pixel width in float32, 0 -> NaN.
    calibrated = np.where(phase, cleaned, np.float32(0)) * np.float32(width)
    return np.where(calibrated == 0, np.float32(np.nan), calibrated).astype(np.float32)
