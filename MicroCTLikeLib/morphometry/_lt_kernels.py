"""numba kernels of the BoneJ-exact local thickness (private; see :mod:`.local_thickness`).

Every kernel reproduces one step of Fiji LocalThickness as BoneJ2 drives it (the step
numbers refer to SCIENCE.md section 2). Work is split over z so threads never write the
same voxel. Compiled functions are cached on disk (``cache=True``); the first call in a
fresh environment pays the JIT compilation (a few seconds), later processes load the cache.

The painting kernel uses an exact shortcut ("crescent painting"): a ridge point p skips
the part of its ball that a face neighbour q with a larger squared radius (or an equal one
and a lower linear index) covers. Every such voxel still receives >= R_p from q's side: q is
either a ridge point (which paints it or passes it on to its own dominating neighbour) or
it is not, and then its whole ball lies in a neighbour's ball with a strictly larger radius
(the ridge criterion). Along that chain (R, index order) strictly grows, so it ends at a
ridge point that paints the voxel. The painted maximum is therefore the same as painting
every full ball, which the slow reference implementation does literally.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

_JIT = dict(cache=True, nogil=True)

# Neighbour order of Clean_Up_Local_Thickness's float32 sum, as (dz, dy, dx) in our (z, y, x)
# arrays; the README gives it as (dx, dy, dz).
_CLEANUP_ORDER_DXYZ = (
    (0, 0, -1), (0, 0, 1), (0, -1, 0), (0, 1, 0), (-1, 0, 0), (1, 0, 0),
    (0, 1, -1), (0, 1, 1), (1, -1, 0), (1, 1, 0), (-1, 0, 1), (1, 0, 1),
    (0, -1, -1), (0, -1, 1), (-1, -1, 0), (-1, 1, 0), (-1, 0, -1), (1, 0, -1),
    (1, 1, 1), (1, -1, 1), (-1, 1, 1), (-1, -1, 1), (1, 1, -1), (1, -1, -1),
    (-1, 1, -1), (-1, -1, -1),
)
CLEANUP_OFFSETS_ZYX = np.array([(dz, dy, dx) for dx, dy, dz in _CLEANUP_ORDER_DXYZ], dtype=np.int64)


_RIDGE = sorted(((dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if (dz, dy, dx) != (0, 0, 0)), key=lambda o: abs(o[0]) + abs(o[1]) + abs(o[2]))
RIDGE_OFFSETS_ZYX = np.array(_RIDGE, dtype=np.int64)
RIDGE_CLASS = np.array([abs(o[0]) + abs(o[1]) + abs(o[2]) - 1 for o in _RIDGE], dtype=np.int64)


@numba.njit(**_JIT)
def integer_sqrt_table(n_max):
    """``table[n] = floor(sqrt(n))`` for n in [0, n_max], exact for every n."""
    table = np.empty(n_max + 1, dtype=np.int32)
    for n in range(n_max + 1):
        r = int(math.sqrt(n))
        while r * r > n:
            r -= 1
        while (r + 1) * (r + 1) <= n:
            r += 1
        table[n] = r
    return table


@numba.njit(**_JIT)
def ridge_templates(r_sq_max):
    """Distance-ridge templates for every squared radius 0..r_sq_max.

    ``t[c, R]`` is the smallest squared radius a ball centred on a neighbour of class c
    (0 face (1,0,0), 1 edge (1,1,0), 2 corner (1,1,1)) needs to hold every grid point of
    {x : |x|^2 <= R}, i.e. max over that ball of |x - n_c|^2 = |x|^2 + 2 * (sum of the
    |components| of x along n_c) + |n_c|^2. By symmetry the best choice puts the largest
    |components| along n_c, so one sweep over sorted triples a >= b >= c >= 0 suffices.
    """
    best = np.full((3, r_sq_max + 1), -1, dtype=np.int64)
    r = int(math.sqrt(r_sq_max)) + 1
    for a in range(r + 1):
        for b in range(a + 1):
            for c in range(b + 1):
                m = a * a + b * b + c * c
                if m > r_sq_max:
                    continue
                if m + 2 * a > best[0, m]:
                    best[0, m] = m + 2 * a
                if m + 2 * (a + b) > best[1, m]:
                    best[1, m] = m + 2 * (a + b)
                if m + 2 * (a + b + c) > best[2, m]:
                    best[2, m] = m + 2 * (a + b + c)
    out = np.empty((3, r_sq_max + 1), dtype=np.int64)
    for k in range(3):
        running = -1
        for m in range(r_sq_max + 1):
            if best[k, m] > running:
                running = best[k, m]
            out[k, m] = running + (k + 1)
    return out


@numba.njit(parallel=True, **_JIT)
def squared_radius_from_edtsq(edtsq, phase):
    """Step 3's ``R = (int)(d*d + 0.5f)`` with d the float32 EDT, as Java computes it."""
    nz, ny, nx = edtsq.shape
    r_sq = np.zeros((nz, ny, nx), dtype=np.int32)
    half = np.float32(0.5)
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if phase[z, y, x]:
                    d = np.float32(math.sqrt(float(edtsq[z, y, x])))
                    r_sq[z, y, x] = int(np.float32(np.float32(d * d) + half))
    return r_sq


@numba.njit(parallel=True, **_JIT)
def ridge_points(r_sq, templates):
    """Step 3: coordinates (z, y, x) and R of the distance-ridge points, sorted by z."""
    nz, ny, nx = r_sq.shape
    flags = np.zeros((nz, ny, nx), dtype=np.uint8)
    counts = np.zeros(nz, dtype=np.int64)
    r_flat = r_sq.reshape(-1)
    flat_offsets = np.empty(26, dtype=np.int64)
    for k in range(26):
        flat_offsets[k] = (RIDGE_OFFSETS_ZYX[k, 0] * ny + RIDGE_OFFSETS_ZYX[k, 1]) * nx + RIDGE_OFFSETS_ZYX[k, 2]
    for z in prange(nz):
        n = 0
        for y in range(ny):
            for x in range(nx):
                rp = r_sq[z, y, x]
                if rp == 0:
                    continue
                ridge = True
                t_face = templates[0, rp]
                t_edge = templates[1, rp]
                t_corner = templates[2, rp]
                if 0 < z < nz - 1 and 0 < y < ny - 1 and 0 < x < nx - 1:
                    # interior voxel: no bounds checks (faces first: likeliest to hold the ball)
                    i0 = (z * ny + y) * nx + x
                    for k in range(26):
                        t = t_face if k < 6 else (t_edge if k < 18 else t_corner)
                        if r_flat[i0 + flat_offsets[k]] >= t:
                            ridge = False
                            break
                else:
                    for k in range(26):
                        zz = z + RIDGE_OFFSETS_ZYX[k, 0]
                        yy = y + RIDGE_OFFSETS_ZYX[k, 1]
                        xx = x + RIDGE_OFFSETS_ZYX[k, 2]
                        if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                            continue
                        if r_sq[zz, yy, xx] >= templates[RIDGE_CLASS[k], rp]:
                            ridge = False
                            break
                if ridge:
                    flags[z, y, x] = 1
                    n += 1
        counts[z] = n
    starts = np.zeros(nz + 1, dtype=np.int64)
    for z in range(nz):
        starts[z + 1] = starts[z] + counts[z]
    coords = np.empty((starts[nz], 3), dtype=np.int32)
    radii = np.empty(starts[nz], dtype=np.int32)
    for z in prange(nz):
        k = starts[z]
        for y in range(ny):
            for x in range(nx):
                if flags[z, y, x]:
                    coords[k, 0] = z
                    coords[k, 1] = y
                    coords[k, 2] = x
                    radii[k] = r_sq[z, y, x]
                    k += 1
    return coords, radii, starts


@numba.njit(**_JIT)
def _dominates(r_q, r_p, q_before_p):
    return r_q > r_p or (r_q == r_p and q_before_p)


@numba.njit(parallel=True, **_JIT)
def paint_balls(r_sq, coords, radii, starts, isqrt, n_chunks):
    """Step 4: ``s[x] = max R_p`` over ridge balls holding x (crescent painting, exact)."""
    nz, ny, nx = r_sq.shape
    s = np.zeros((nz, ny, nx), dtype=np.int32)
    r_max = 0
    for k in range(radii.shape[0]):
        if radii[k] > r_max:
            r_max = radii[k]
    reach = isqrt[r_max]
    chunk = (nz + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        z0 = c * chunk
        z1 = min(nz, z0 + chunk)
        if z0 >= z1:
            continue
        first = starts[max(0, z0 - reach)]
        last = starts[min(nz, z1 + reach)]
        for k in range(first, last):
            z = coords[k, 0]
            y = coords[k, 1]
            x = coords[k, 2]
            rp = radii[k]
            r = isqrt[rp]
            if z + r < z0 or z - r >= z1:
                continue
            # face neighbours whose ball holds each of our rows at least as wide
            rxm = r_sq[z, y, x - 1] if x > 0 else 0
            rxp = r_sq[z, y, x + 1] if x < nx - 1 else 0
            rym = r_sq[z, y - 1, x] if y > 0 else 0
            ryp = r_sq[z, y + 1, x] if y < ny - 1 else 0
            rzm = r_sq[z - 1, y, x] if z > 0 else 0
            rzp = r_sq[z + 1, y, x] if z < nz - 1 else 0
            dom_xm = _dominates(rxm, rp, True)
            dom_xp = _dominates(rxp, rp, False)
            dom_ym = _dominates(rym, rp, True)
            dom_yp = _dominates(ryp, rp, False)
            dom_zm = _dominates(rzm, rp, True)
            dom_zp = _dominates(rzp, rp, False)
            if (dom_xm and dom_xp) or (dom_ym and dom_yp) or (dom_zm and dom_zp):
                # two opposite dominating neighbours cover every row of this ball
                continue
            # A dominating neighbour at -1 along an axis holds every row on that side
            # (offset <= -1): R_q - (d + 1)^2 >= R_p - d^2 there. Likewise at +1.
            dz_lo = max(0 if dom_zm else -r, z0 - z)
            dz_hi = min(0 if dom_zp else r, z1 - 1 - z)
            for dz in range(dz_lo, dz_hi + 1):
                zz = z + dz
                rem_z = rp - dz * dz
                ry = isqrt[rem_z]
                dy_lo = max(0 if dom_ym else -ry, -y)
                dy_hi = min(0 if dom_yp else ry, ny - 1 - y)
                # trim the rows a y neighbour holds from the ends of the range (an interior
                # row it holds is painted redundantly, which is harmless)
                if dom_ym:
                    while dy_lo <= dy_hi:
                        t = rym - dz * dz - (dy_lo + 1) * (dy_lo + 1)
                        if t >= 0 and isqrt[t] >= isqrt[rem_z - dy_lo * dy_lo]:
                            dy_lo += 1
                        else:
                            break
                if dom_yp:
                    while dy_lo <= dy_hi:
                        t = ryp - dz * dz - (dy_hi - 1) * (dy_hi - 1)
                        if t >= 0 and isqrt[t] >= isqrt[rem_z - dy_hi * dy_hi]:
                            dy_hi -= 1
                        else:
                            break
                for dy in range(dy_lo, dy_hi + 1):
                    rem = rem_z - dy * dy
                    a = isqrt[rem]
                    if dom_zm:
                        t = rzm - (dz + 1) * (dz + 1) - dy * dy
                        if t >= 0 and isqrt[t] >= a:
                            continue
                    if dom_zp:
                        t = rzp - (dz - 1) * (dz - 1) - dy * dy
                        if t >= 0 and isqrt[t] >= a:
                            continue
                    lo = x - a
                    hi = x + a
                    if dom_xm:
                        # the left ball's row ends at x - 1 + b >= x - 1 + a
                        lo = max(lo, x + isqrt[rxm - dz * dz - dy * dy])
                    if dom_xp:
                        hi = min(hi, x - isqrt[rxp - dz * dz - dy * dy])
                    lo = max(lo, 0)
                    hi = min(hi, nx - 1)
                    yy = y + dy
                    for xx in range(lo, hi + 1):
                        if s[zz, yy, xx] < rp:
                            s[zz, yy, xx] = rp
    return s


@numba.njit(parallel=True, **_JIT)
def surface_flags(s):
    """Step 5: 1 where s != 0 and some in-image 26-neighbour has s == 0.

    "Some zero in the in-image 3x3x3 block" is a box OR, done as three 1-D passes.
    """
    nz, ny, nx = s.shape
    along_x = np.zeros((nz, ny, nx), dtype=np.uint8)
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if s[z, y, x] == 0:
                    along_x[z, y, x] = 1
                    if x > 0:
                        along_x[z, y, x - 1] = 1
                    if x < nx - 1:
                        along_x[z, y, x + 1] = 1
    along_xy = np.zeros((nz, ny, nx), dtype=np.uint8)
    for z in prange(nz):
        for y in range(ny):
            y_lo = max(y - 1, 0)
            y_hi = min(y + 1, ny - 1)
            for x in range(nx):
                v = along_x[z, y_lo, x] | along_x[z, y, x] | along_x[z, y_hi, x]
                along_xy[z, y, x] = v
    flags = along_x  # reuse the buffer: along_x is no longer needed
    for z in prange(nz):
        z_lo = max(z - 1, 0)
        z_hi = min(z + 1, nz - 1)
        for y in range(ny):
            for x in range(nx):
                hit = along_xy[z_lo, y, x] | along_xy[z, y, x] | along_xy[z_hi, y, x]
                flags[z, y, x] = 1 if (hit and s[z, y, x] != 0) else 0
    return flags


@numba.njit(parallel=True, **_JIT)
def cleaned_calibrated_map(s, surface, phase, lt_of_s, offsets, pixel_width):
    """Steps 5-7 for the phase voxels: clean-up (float32 sum in Java's neighbour order),
    masking, float32 calibration; NaN outside the phase."""
    nz, ny, nx = s.shape
    out = np.empty((nz, ny, nx), dtype=np.float32)
    nan = np.float32(np.nan)
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                if not phase[z, y, x]:
                    out[z, y, x] = nan
                    continue
                v = lt_of_s[s[z, y, x]]
                if surface[z, y, x]:
                    acc = np.float32(0.0)
                    count = 0
                    for k in range(offsets.shape[0]):
                        zz = z + offsets[k, 0]
                        yy = y + offsets[k, 1]
                        xx = x + offsets[k, 2]
                        if zz < 0 or zz >= nz or yy < 0 or yy >= ny or xx < 0 or xx >= nx:
                            continue
                        sq = s[zz, yy, xx]
                        if sq != 0 and surface[zz, yy, xx] == 0:
                            acc = np.float32(acc + lt_of_s[sq])
                            count += 1
                    if count > 0:
                        v = np.float32(acc / np.float32(count))
                v = np.float32(v * pixel_width)
                out[z, y, x] = v if v != 0 else nan
    return out


@numba.njit(**_JIT)
def nan_statistics(values):
    """ImageJ StackStatistics over the non-NaN voxels: (mean, sample SD, max, n)."""
    flat = values.ravel()
    n = 0
    total = 0.0
    total_sq = 0.0
    vmax = -np.inf
    for i in range(flat.shape[0]):
        v = flat[i]
        if v != v:
            continue
        dv = np.float64(v)
        n += 1
        total += dv
        total_sq += dv * dv
        if dv > vmax:
            vmax = dv
    return n, total, total_sq, vmax
