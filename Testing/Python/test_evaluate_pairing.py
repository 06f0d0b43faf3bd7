"""SIFT + DTW slice pairing recovers a known 2:1 correspondence (noise, dropped and swapped slices)."""

import numpy as np
import pytest
from scipy import ndimage

from MicroCTLikeLib.evaluate.pairing import band_limits, dtw_path, pair_slices, pairs_from_path

pytest.importorskip("cv2")


def simulated_pair(n_mdct=24, size=96, seed=0, drop=(), swap=()):
    """Micro-CT-like stack of a 3-D random trabecular pattern; the MDCT-like stack averages slice
    pairs (2:1), is blurred in-plane and noisier. Returns 8-bit stacks and the true pairs."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((2 * n_mdct, size, size)), (2.0, 2.5, 2.5), mode="wrap")
    micro = (np.abs(field) < 0.25 * field.std()).astype(np.float32)
    mdct = ndimage.gaussian_filter(0.5 * (micro[0::2] + micro[1::2]), (0, 1.5, 1.5))
    mdct = mdct + rng.normal(0, 0.08, mdct.shape)
    micro = ndimage.gaussian_filter(micro + rng.normal(0, 0.15, micro.shape), (0, 1.0, 1.0))
    true = {i: [2 * i, 2 * i + 1] for i in range(n_mdct)}
    keep = [j for j in range(micro.shape[0]) if j not in drop]
    renumber = {old: new for new, old in enumerate(keep)}
    micro = micro[keep]
    true = {i: [renumber[j] for j in js if j in renumber] for i, js in true.items()}
    order = list(range(n_mdct))
    for a in swap:
        order[a], order[a + 1] = order[a + 1], order[a]
    mdct = mdct[order]
    true = {k: true[order[k]] for k in range(n_mdct)}

    def to8(x):
        return np.clip((x - x.min()) / np.ptp(x) * 255, 0, 255).astype(np.uint8)

    return list(to8(mdct)), list(to8(micro)), true


def accuracy(pairs, true):
    """Fraction of MDCT slices whose every paired micro-CT slice is within one slice of a true partner."""
    return float(np.mean([bool(js) and all(any(abs(j - t) <= 1 for t in true[i]) for j in js)
                          for i, js in pairs.items()]))


def test_dtw_follows_a_known_cheap_path():
    n_a, n_b = 6, 12
    cost = np.ones((n_a, n_b))
    truth = [(i, j) for i in range(n_a) for j in (2 * i, 2 * i + 1)]
    for i, j in truth:
        cost[i, j] = 0.0
    path = dtw_path(cost)
    assert path == truth
    assert pairs_from_path(path, n_a) == {i: [2 * i, 2 * i + 1] for i in range(n_a)}
    low, high = band_limits(n_a, n_b, 2)
    banded = cost.copy()
    for i in range(n_a):
        banded[i, :low[i]] = np.inf
        banded[i, high[i]:] = np.inf
    assert dtw_path(banded) == truth


def test_pairing_recovers_the_2_to_1_correspondence():
    mdct, micro, true = simulated_pair(seed=1)
    out = pair_slices(mdct, micro, band=8)
    assert accuracy(out["pairs"], true) >= 0.95
    assert np.mean([len(v) for v in out["pairs"].values()]) == pytest.approx(2.0, abs=0.25)


def test_pairing_survives_dropped_and_swapped_slices():
    mdct, micro, true = simulated_pair(seed=2, drop=(9, 30), swap=(15,))
    out = pair_slices(mdct, micro, band=8)
    # DTW is monotone: a swapped pair cannot both be right; everything else must be
    assert accuracy(out["pairs"], true) >= 0.85
    # the cost really separates matching slices: the true partner is the row minimum most of the time
    cost = out["cost"]
    hits = [np.argmin(cost[i]) in [t + d for t in true[i] for d in (-1, 0, 1)] for i in range(len(mdct))]
    assert np.mean(hits) >= 0.8
