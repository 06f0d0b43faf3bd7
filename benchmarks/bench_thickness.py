"""Benchmark: BoneJ-exact Tb.Th / Tb.Sp against the approximate Python peers.

Builds a 288 x 288 x 96 trabecular VOI at 52 um (a seeded perforated-sheet field: band-pass
filtered Gaussian noise, bone = |g| < t, perforated where a second field is low; BV/TV
~0.18, Tb.Th ~0.2 mm), then prints in one table our times (Tb.Th, Tb.Sp with the outside of
the 15 mm cylinder set to bone, Tb.Sp literal on the whole stack) next to ``localthickness``
and ``porespy.filters.local_thickness`` on the same data, the peers' mean deviation from our
exact values, the time ratios and our peak memory.

Run: ``python benchmarks/bench_thickness.py`` (``make bench`` installs the peers).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

VOXEL_MM = 0.052
SHAPE_ZYX = (96, 288, 288)


def perforated_sheet_voi(*, shape_zyx=SHAPE_ZYX, voxel_mm=VOXEL_MM, wavelength_mm=1.94,
                         bv_tv=0.18, perforation=0.14, elongation_z=0.8, seed=7):
    """Seeded binary trabecular phantom (uint8 0/255) and its z-cylinder mask (bool).

    g is white noise filtered to a spectral shell |k| = 1/wavelength (z frequencies scaled by
    ``elongation_z``); bone = |g| < t with t found by bisection for ``bv_tv``, minus holes
    where a second, coarser field falls below its ``perforation`` quantile.
    """
    rng = np.random.default_rng(seed)

    def shell_field(wavelength):
        noise = rng.standard_normal(shape_zyx)
        kz = np.fft.fftfreq(shape_zyx[0], d=voxel_mm)[:, None, None] * elongation_z
        ky = np.fft.fftfreq(shape_zyx[1], d=voxel_mm)[None, :, None]
        kx = np.fft.rfftfreq(shape_zyx[2], d=voxel_mm)[None, None, :]
        k = np.sqrt(kz ** 2 + ky ** 2 + kx ** 2)
        k0 = 1.0 / wavelength
        spectrum = np.exp(-0.5 * ((k - k0) / (0.3 * k0)) ** 2)
        field = np.fft.irfftn(np.fft.rfftn(noise) * spectrum, s=shape_zyx, axes=(0, 1, 2))
        return (field - field.mean()) / field.std()

    g = np.abs(shell_field(wavelength_mm))
    h = shell_field(2.0 * wavelength_mm)
    holes = h < np.quantile(h, perforation)
    lo, hi = 0.0, 3.0
    for _ in range(40):
        t = 0.5 * (lo + hi)
        if np.mean((g < t) & ~holes) < bv_tv:
            lo = t
        else:
            hi = t
    bone = (g < 0.5 * (lo + hi)) & ~holes
    nz, ny, nx = shape_zyx
    yy, xx = np.mgrid[0:ny, 0:nx]
    radius = min(ny, nx) / 2.0
    disk = (yy - (ny - 1) / 2.0) ** 2 + (xx - (nx - 1) / 2.0) ** 2 <= radius ** 2
    cylinder = np.broadcast_to(disk, shape_zyx).copy()
    return np.where(bone, 255, 0).astype(np.uint8), cylinder


def _time(fn, repeat):
    """Best wall time and best process CPU time (all threads) over ``repeat`` runs.

    CPU time is printed too because a shared 2-core machine inflates wall times."""
    best, best_cpu = np.inf, np.inf
    result = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return (best, best_cpu), result


def _peer_localthickness():
    try:
        import localthickness
    except Exception as exc:  # noqa: BLE001 - report any import failure
        return None, f"localthickness not importable ({exc.__class__.__name__}: {exc}); pip install localthickness"
    # returns radii in voxels: x2 for a thickness
    return (lambda phase: 2.0 * localthickness.local_thickness(phase)), None


def _peer_porespy():
    try:
        import porespy
    except Exception as exc:  # noqa: BLE001
        return None, f"porespy not importable ({exc.__class__.__name__}: {exc}); pip install porespy"
    return (lambda phase: 2.0 * porespy.filters.local_thickness(phase, method="bf")), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings for our code")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-peers", action="store_true", help="time our code only")
    args = parser.parse_args(argv)

    from MicroCTLikeLib.morphometry.local_thickness import local_thickness_map, thickness_stats

    binary, cylinder = perforated_sheet_voi(seed=args.seed)
    bone = binary >= 128
    sp_outside_bone = binary.copy()
    sp_outside_bone[~cylinder] = 255
    print(f"phantom {binary.shape} (z,y,x) at {VOXEL_MM * 1000:.0f} um, BV/TV {bone.mean():.3f}, "
          f"cylinder {cylinder.mean():.3f} of the box")

    t0 = time.perf_counter()
    local_thickness_map(binary[:8, :32, :32], pixel_width_mm=VOXEL_MM)  # JIT load / compile
    warmup_s = time.perf_counter() - t0

    tracemalloc.start()
    th_s, th_map = _time(lambda: local_thickness_map(binary, pixel_width_mm=VOXEL_MM), args.repeat)
    sp_s, sp_map = _time(lambda: local_thickness_map(sp_outside_bone, pixel_width_mm=VOXEL_MM, inverse=True),
                         args.repeat)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole_s, whole_map = _time(lambda: local_thickness_map(binary, pixel_width_mm=VOXEL_MM, inverse=True), 1)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    ours = {"Tb.Th": (th_s, thickness_stats(th_map).mean, bone),
            "Tb.Sp (outside=bone)": (sp_s, thickness_stats(sp_map).mean, sp_outside_bone < 128),
            "Tb.Sp (literal, whole stack)": (whole_s, thickness_stats(whole_map).mean, ~bone)}

    peers = {}
    for name, factory in (("localthickness", _peer_localthickness), ("porespy bf", _peer_porespy)):
        fn, why = (None, "skipped (--no-peers)") if args.no_peers else factory()
        peers[name] = (fn, why)

    header = f"{'measure':29s} {'ours s':>6s} {'cpu s':>6s} {'ours mm':>7s} | " + " | ".join(
        f"{name:>14s} s {'cpu s':>6s} {'dev%':>6s} {'ratio':>5s}" for name in peers)
    print(f"JIT warm-up (cache load or compile) {warmup_s:.2f} s; peak traced memory "
          f"{peak_bytes / 2**20:.0f} MiB; max RSS {rss_mb:.0f} MiB; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(header)
    print("-" * len(header))
    for label, ((t_ours, c_ours), mean_ours, phase) in ours.items():
        cells = []
        for name, (fn, why) in peers.items():
            if fn is None:
                cells.append(f"{'n/a':>16s} {'':>6s} {'':>6s} {'':>5s}")
                continue
            (t_peer, c_peer), peer_map = _time(lambda: fn(phase), 1)
            mean_peer = float(np.mean(peer_map[phase])) * VOXEL_MM
            dev = 100.0 * (mean_peer - mean_ours) / mean_ours
            cells.append(f"{t_peer:16.2f} {c_peer:6.2f} {dev:+6.1f} {t_peer / t_ours:5.1f}")
        print(f"{label:29s} {t_ours:6.3f} {c_ours:6.3f} {mean_ours:7.4f} | " + " | ".join(cells))
    for name, (fn, why) in peers.items():
        if fn is None:
            print(f"NOTE: {name}: {why}")
    print("s = best wall time, cpu s = process CPU time (all threads); dev% = peer mean / our BoneJ-exact "
          "mean - 1 (same phase voxels); ratio = peer wall time / our wall time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
