"""Slice pairing speed for a study-sized specimen: 250 MDCT x 500 micro-CT slices (SIFT + banded DTW).

Run: ``python benchmarks/bench_pairing.py [--size PX] [--band N]``.

The slices are a simulated trabecular pattern (2:1 slice correspondence, MDCT blurred and
noisy), ``--size`` pixels square (default 256: a vertebral body at the MDCT's 0.195 mm
pixels; ``pair_volumes`` samples the micro-CT at that size before SIFT). Prints the time of
the SIFT descriptors, of the banded cost matrix and of the DTW, the pairing accuracy, and the
per-pair cost extrapolated to the unbanded 250 x 500 matrix. Target: under 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing" / "Python"))

from MicroCTLikeLib.evaluate.pairing import cost_matrix, dtw_path, pair_cost, pairs_from_path, slice_descriptors  # noqa: E402
from test_evaluate_pairing import accuracy, simulated_pair  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--band", type=int, default=10)
    parser.add_argument("--mdct-slices", type=int, default=250)
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(2)
    mdct, micro, true = simulated_pair(n_mdct=args.mdct_slices, size=args.size, seed=5, drop=(101, 302), swap=(60,))
    timings = {}
    t = time.perf_counter()
    desc_a = slice_descriptors(mdct)
    desc_b = slice_descriptors(micro)
    timings["sift_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cost = cost_matrix(desc_a, desc_b, band=args.band)
    timings["banded_cost_s"] = time.perf_counter() - t
    n_pairs = int(np.isfinite(cost).sum())
    t = time.perf_counter()
    path = dtw_path(cost)
    timings["dtw_s"] = time.perf_counter() - t
    timings["total_s"] = sum(timings.values())
    pairs = pairs_from_path(path, len(mdct))
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    rng = np.random.default_rng(0)
    sample = [(int(rng.integers(len(mdct))), int(rng.integers(len(micro)))) for _ in range(300)]
    t = time.perf_counter()
    for i, j in sample:
        pair_cost(desc_a[i], desc_b[j], matcher=matcher)
    per_pair = (time.perf_counter() - t) / len(sample)
    result = {"mdct_slices": len(mdct), "microct_slices": len(micro), "size_px": args.size, "band": args.band,
              "pairs_computed": n_pairs, "ms_per_pair": round(per_pair * 1e3, 3),
              "unbanded_estimate_s": round(per_pair * len(mdct) * len(micro) + timings["sift_s"], 1),
              "accuracy": round(accuracy(pairs, true), 3), "mean_partners": round(float(np.mean([len(v) for v in pairs.values()])), 2),
              **{k: round(v, 2) for k, v in timings.items()}, "cpu_count": os.cpu_count(),
              "load_average_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(result, indent=2))
    return 0 if result["total_s"] < 15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
