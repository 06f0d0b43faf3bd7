"""Shared helpers of the trainer tests: tiny synthetic cohorts with known geometry.

A specimen is a random "trabecular" binary field on a 52 um grid; the micro-CT is that field
as grey values, the MDCT the same field blurred and sampled on a 0.195 x 0.195 x 0.1 mm grid
in HU.  Both volumes cover the same physical box (same outer edges, LPS, identity
direction), as the simulator's do, so paired slices can be checked against the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from MicroCTLikeLib.volume import Volume, write_volume

MICRO_MM = 0.052
MDCT_XY_MM = 0.195
MDCT_Z_MM = 0.1


def make_case(folder: Path, seed: int, *, size_mm: float = 5.07, depth_mm: float = 0.624) -> None:
    """Write ``folder/mdct.nrrd`` (int16 HU) and ``folder/microct.nrrd`` (uint16 grey)."""
    rng = np.random.default_rng(seed)
    n_xy = int(round(size_mm / MICRO_MM))
    n_z = int(round(depth_mm / MICRO_MM))
    field = ndimage.gaussian_filter(rng.standard_normal((n_z, n_xy, n_xy)), sigma=(2, 3, 3))
    bone = (np.abs(field) < 0.35 * field.std()).astype(np.float32)
    origin = np.array([-size_mm / 2, -size_mm / 2, -depth_mm / 2])
    micro = (1000 + 9000 * ndimage.gaussian_filter(bone, 0.6) + rng.normal(0, 300, bone.shape)).astype(np.uint16)
    write_volume(
        Volume(micro, (MICRO_MM,) * 3, tuple(origin + MICRO_MM / 2)), folder / "microct.nrrd"
    )
    # MDCT: blur, then sample the same box at coarse pixel centres
    hu = -20 + 1200 * ndimage.gaussian_filter(bone, sigma=(0.6 / 2.355 / MICRO_MM,) * 3)
    n_mdct_xy = int(round(size_mm / MDCT_XY_MM))
    n_mdct_z = int(round(depth_mm / MDCT_Z_MM))
    centres_xy = (np.arange(n_mdct_xy) + 0.5) * MDCT_XY_MM / MICRO_MM - 0.5
    centres_z = (np.arange(n_mdct_z) + 0.5) * MDCT_Z_MM / MICRO_MM - 0.5
    zz, yy, xx = np.meshgrid(centres_z, centres_xy, centres_xy, indexing="ij")
    mdct = ndimage.map_coordinates(hu, [zz, yy, xx], order=1, mode="nearest")
    mdct = np.round(mdct + rng.normal(0, 40, mdct.shape)).astype(np.int16)
    write_volume(
        Volume(mdct, (MDCT_XY_MM, MDCT_XY_MM, MDCT_Z_MM), tuple(origin + np.array([MDCT_XY_MM, MDCT_XY_MM, MDCT_Z_MM]) / 2)),
        folder / "mdct.nrrd",
    )


def make_cohort(root: Path, n_cases: int = 3, *, seed: int = 0, split: bool = True) -> Path:
    """A cohort folder of ``n_cases`` small specimens with a cohort.json manifest."""
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"case{i:03d}" for i in range(n_cases)]
    for i, case_id in enumerate(ids):
        make_case(root / case_id, seed * 100 + i)
    manifest = {"cases": [{"id": case_id} for case_id in ids]}
    if split:
        manifest["split"] = {"train": ids[:-1] if n_cases > 1 else ids, "test": ids[-1:] if n_cases > 1 else []}
    (root / "cohort.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """Three specimens (two train, one test), made once per session."""
    return make_cohort(tmp_path_factory.mktemp("cohort"), 3)


def test_support_cohort_geometry(tiny_cohort):
    """The helper's two volumes cover the same physical box (what paired slices rely on)."""
    from MicroCTLikeLib.volume import read_volume

    mdct = read_volume(tiny_cohort / "case000" / "mdct.nrrd")
    micro = read_volume(tiny_cohort / "case000" / "microct.nrrd")
    assert mdct.array.dtype == np.int16 and mdct.spacing_xyz_mm == pytest.approx((0.195, 0.195, 0.1))
    edge_mdct = mdct.index_zyx_to_lps(np.array([-0.5, -0.5, -0.5]))
    edge_micro = micro.index_zyx_to_lps(np.array([-0.5, -0.5, -0.5]))
    np.testing.assert_allclose(edge_mdct, edge_micro, atol=1e-6)
