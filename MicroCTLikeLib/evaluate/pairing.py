"""Slice pairing of an MDCT and a micro-CT of one specimen without a shared frame: SIFT + DTW.

The study paired its test slices this way (SCIENCE.md section 7):

1. SIFT keypoints and descriptors per axial slice (OpenCV, on 8-bit images);
2. cost(MDCT slice i, micro-CT slice j) = mean descriptor distance of the matches that pass
   Lowe's ratio test (0.75); a fixed large cost when fewer than ``min_matches`` pass;
3. dynamic time warping over the cost matrix, restricted to a band around the diagonal
   (slices run the same way through the specimen; the unbanded matrix of a study-sized
   specimen costs minutes), so each MDCT slice gets its ~2 micro-CT slices (0.1 mm MDCT
   interval vs 0.052 mm micro-CT voxels).

Descriptors can be cached (``cache_dir``): a rerun of the evaluation does not recompute them.
SIFT sees the two modalities more alike when the micro-CT is first smoothed and sampled at
the MDCT's in-plane pixel size (:func:`pair_volumes` does this).

Lowe, IJCV 2004, doi:10.1023/B:VISI.0000029664.99615.94; Sakoe & Chiba 1978 (DTW band).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidParameterError

#: cost of a pair with too few ratio-test matches (descriptor distances of SIFT lie in ~0..600)
NO_MATCH_COST = 1000.0


def _sift(n_features: int):
    import cv2

    return cv2.SIFT_create(nfeatures=int(n_features))


def slice_descriptors(slices_8bit: Sequence[np.ndarray], *, n_features: int = 200) -> List[Optional[np.ndarray]]:
    """SIFT descriptors (float32, (m, 128)) of each 8-bit slice; ``None`` where none was found."""
    sift = _sift(n_features)
    out: List[Optional[np.ndarray]] = []
    for image in slices_8bit:
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 2:
            raise InvalidParameterError(f"SIFT needs 2-D uint8 slices, got {image.dtype} {image.shape}")
        _, descriptors = sift.detectAndCompute(image, None)
        out.append(None if descriptors is None or len(descriptors) < 2 else descriptors.astype(np.float32))
    return out


def pair_cost(a: Optional[np.ndarray], b: Optional[np.ndarray], *, ratio: float = 0.75, min_matches: int = 4,
              matcher=None) -> float:
    """Mean distance of the ratio-test matches of descriptors ``a`` in ``b`` (``NO_MATCH_COST`` if too few)."""
    import cv2

    if a is None or b is None or len(b) < 2:
        return NO_MATCH_COST
    matcher = matcher or cv2.BFMatcher(cv2.NORM_L2)
    distances = [m.distance for m, n in (pair for pair in matcher.knnMatch(a, b, k=2) if len(pair) == 2)
                 if m.distance < ratio * n.distance]
    return float(np.mean(distances)) if len(distances) >= min_matches else NO_MATCH_COST


def band_limits(n_a: int, n_b: int, band: int) -> Tuple[np.ndarray, np.ndarray]:
    """For each row i, the first and one-past-last column j of the band around the diagonal."""
    centre = np.arange(n_a) * ((n_b - 1) / max(n_a - 1, 1))
    low = np.clip(np.floor(centre - band).astype(int), 0, n_b - 1)
    high = np.clip(np.ceil(centre + band).astype(int) + 1, 1, n_b)
    return low, high


def cost_matrix(desc_a, desc_b, *, band: Optional[int] = None, ratio: float = 0.75, min_matches: int = 4) -> np.ndarray:
    """(n_a, n_b) costs; cells outside the band are +inf (``band=None``: the full matrix)."""
    import cv2

    n_a, n_b = len(desc_a), len(desc_b)
    cost = np.full((n_a, n_b), np.inf)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    low, high = band_limits(n_a, n_b, band if band is not None else max(n_a, n_b))
    for i in range(n_a):
        for j in range(low[i], high[i]):
            cost[i, j] = pair_cost(desc_a[i], desc_b[j], ratio=ratio, min_matches=min_matches, matcher=matcher)
    return cost


def dtw_path(cost: np.ndarray) -> List[Tuple[int, int]]:
    """Minimal-cost monotone path from (0, 0) to (n_a-1, n_b-1), steps (1,0), (0,1), (1,1).

    Infinite cells (outside the band) are never entered.
    """
    cost = np.asarray(cost, float)
    n_a, n_b = cost.shape
    total = np.full((n_a + 1, n_b + 1), np.inf)
    total[0, 0] = 0.0
    finite = np.isfinite(cost)
    rows = [np.flatnonzero(finite[i]) for i in range(n_a)]
    for i in range(1, n_a + 1):
        previous, current = total[i - 1], total[i]
        for j in rows[i - 1] + 1:
            best = min(previous[j - 1], previous[j], current[j - 1])
            current[j] = cost[i - 1, j - 1] + best
    if not np.isfinite(total[n_a, n_b]):
        raise InvalidParameterError("no warping path inside the band: widen the band")
    i, j = n_a, n_b
    path = [(i - 1, j - 1)]
    while (i, j) != (1, 1):
        moves = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min(moves, key=lambda ij: total[ij])
        path.append((i - 1, j - 1))
    return path[::-1]


def pairs_from_path(path: Sequence[Tuple[int, int]], n_a: int) -> Dict[int, List[int]]:
    """Each row i -> the columns j the path visits in that row."""
    pairs: Dict[int, List[int]] = {i: [] for i in range(n_a)}
    for i, j in path:
        pairs[int(i)].append(int(j))
    return pairs


def pair_slices(slices_a: Sequence[np.ndarray], slices_b: Sequence[np.ndarray], *, band: Optional[int] = 10,
                ratio: float = 0.75, min_matches: int = 4, n_features: int = 200,
                descriptors: Optional[Tuple[list, list]] = None) -> Dict[str, object]:
    """Pair 8-bit slice stacks ``a`` (MDCT) and ``b`` (micro-CT): {"pairs": {i: [j...]}, "cost", "path"}.

    ``band`` (micro-CT slices either side of the diagonal; None = unbanded).
    """
    if descriptors is None:
        descriptors = (slice_descriptors(slices_a, n_features=n_features),
                       slice_descriptors(slices_b, n_features=n_features))
    cost = cost_matrix(descriptors[0], descriptors[1], band=band, ratio=ratio, min_matches=min_matches)
    path = dtw_path(cost)
    return {"pairs": pairs_from_path(path, len(slices_a)), "cost": cost, "path": path}


def _cached_descriptors(slices, cache: Optional[Path], n_features: int):
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            counts = data["counts"]
            flat = data["descriptors"]
        out, start = [], 0
        for count in counts:
            out.append(None if count == 0 else flat[start:start + count])
            start += count
        return out
    descriptors = slice_descriptors(slices, n_features=n_features)
    if cache is not None:
        from ..atomic import atomic_output

        counts = np.array([0 if d is None else len(d) for d in descriptors])
        flat = np.concatenate([d for d in descriptors if d is not None] or [np.zeros((0, 128), np.float32)])
        with atomic_output(cache) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, counts=counts, descriptors=flat)
    return descriptors


def pair_volumes(mdct, microct, *, mdct_window: Sequence[float], microct_window: Sequence[float],
                 band: int = 10, n_features: int = 200, cache_dir=None) -> Dict[int, List[int]]:
    """Pair the axial slices of an MDCT and a micro-CT volume of one specimen (SIFT + DTW).

    Both are shown as 8-bit through their windows; the micro-CT is smoothed and sampled at the
    MDCT's in-plane pixel size first (its own slices kept), so SIFT sees similar images.
    Returns {MDCT slice index: [micro-CT slice indices]}.
    """
    from scipy import ndimage

    from .similarity import window_to_8bit

    ratio = np.array(mdct.spacing_xyz_mm[:2]) / np.array(microct.spacing_xyz_mm[:2])
    micro = np.asarray(microct.array, np.float32)
    sigma = [0.0] + [float(np.sqrt(max(r * r - 1, 0)) / 2.355) for r in ratio[::-1]]
    micro = ndimage.gaussian_filter(micro, sigma)
    micro = ndimage.zoom(micro, (1.0, 1.0 / ratio[1], 1.0 / ratio[0]), order=1)
    slices_a = list(window_to_8bit(mdct.array, mdct_window))
    slices_b = list(window_to_8bit(micro, microct_window))
    cache = Path(cache_dir) if cache_dir else None
    key = hashlib.sha1(repr((mdct.shape_zyx, microct.shape_zyx, list(mdct_window), list(microct_window),
                             n_features)).encode()).hexdigest()[:10]
    descriptors = (_cached_descriptors(slices_a, cache / f"sift_mdct_{key}.npz" if cache else None, n_features),
                   _cached_descriptors(slices_b, cache / f"sift_microct_{key}.npz" if cache else None, n_features))
    return pair_slices(slices_a, slices_b, band=band, n_features=n_features, descriptors=descriptors)["pairs"]
