"""Training data: resampling geometry, windows, specimen split, sampler determinism, sharding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from MicroCTLikeLib.errors import InvalidParameterError
from MicroCTLikeLib.train import data as D
from MicroCTLikeLib.train.config import DEFAULTS
from MicroCTLikeLib.volume import Volume
from test_train_support import tiny_cohort  # noqa: F401  (fixture)


def _config(**changes):
    config = dict(DEFAULTS, crop_px=32, batch_size=4)
    config.update(changes)
    return config


def test_normalise_window_maps_to_unit_range():
    hu = np.array([-1000.0, -200.0, 800.0, 1800.0, 3000.0])
    np.testing.assert_allclose(D.normalise(hu, (-200, 1800)), [-1, -1, 0, 1, 1], atol=1e-7)
    inside = np.array([-200.0, 0.0, 1234.5])
    np.testing.assert_allclose(D.denormalise(D.normalise(inside, (-200, 1800)), (-200, 1800)), inside, atol=1e-3)


@pytest.mark.parametrize("source_mm", [0.195, 0.052])
def test_resample_inplane_keeps_physical_position(source_mm):
    """A bright square at a known LPS position stays there after resampling to 0.104 mm."""
    n = int(round(6.24 / source_mm))
    origin = (-3.0, 2.0, 10.0)
    volume = Volume(np.zeros((2, n, n), np.float32), (source_mm, source_mm, 0.1), origin)
    lo, hi = volume.lps_to_index_zyx(np.array([[0, -3.0 + 1.0, 2.0 + 2.0], [0, -3.0 + 3.0, 2.0 + 4.0]]))[:, 1:].T
    arr = volume.array.copy()
    # square spanning x in [-2, 0] mm, y in [4, 6] mm (pixel centres inside)
    xs = np.arange(n) * source_mm + origin[0]
    ys = np.arange(n) * source_mm + origin[1]
    arr[:, (ys >= 4.0) & (ys <= 6.0), :] += ((xs >= -2.0) & (xs <= 0.0))[None, None, :] * 100.0
    volume = volume.with_array(arr)
    import SimpleITK as sitk

    image = D.resample_inplane(volume, 0.104)
    out = sitk.GetArrayFromImage(image)
    assert image.GetSpacing() == pytest.approx((0.104, 0.104, 0.1))
    assert out.shape[0] == 2
    # physical field of view kept: outer edges agree within half a target pixel
    first_centre = np.array(image.GetOrigin())
    assert first_centre[0] - 0.052 == pytest.approx(origin[0] - source_mm / 2, abs=1e-9)
    # centre of mass of the square at (-1, 5) mm
    yy, xx = np.nonzero(out[0] > 50)
    x_mm = first_centre[0] + xx.mean() * 0.104
    y_mm = first_centre[1] + yy.mean() * 0.104
    assert x_mm == pytest.approx(-1.0, abs=0.06) and y_mm == pytest.approx(5.0, abs=0.06)
    # area of the square (4 mm^2) conserved within a pixel's perimeter
    assert (out[0] > 50).sum() * 0.104**2 == pytest.approx(4.0 + 0.0, abs=8 * 0.104 + 2 * source_mm * 2)


def test_list_cohort_and_manifest_split(tiny_cohort):
    cases = D.list_cohort(tiny_cohort)
    assert [c.case_id for c in cases] == ["case000", "case001", "case002"]
    train = D.select_split(cases, "train", test_fraction=0.3, split_seed=0)
    test = D.select_split(cases, "test", test_fraction=0.3, split_seed=0)
    assert [c.case_id for c in train] == ["case000", "case001"] and [c.case_id for c in test] == ["case002"]


def test_deterministic_specimen_split_without_manifest(tmp_path):
    ids = [f"s{i}" for i in range(9)]
    cases = [D.CaseFiles(i, tmp_path / i / "mdct.nrrd", tmp_path / i / "microct.nrrd") for i in ids]
    train = {c.case_id for c in D.select_split(cases, "train", test_fraction=1 / 3, split_seed=5)}
    test = {c.case_id for c in D.select_split(cases, "test", test_fraction=1 / 3, split_seed=5)}
    assert len(test) == 3 and train.isdisjoint(test) and train | test == set(ids)
    again = {c.case_id for c in D.select_split(list(reversed(cases)), "test", test_fraction=1 / 3, split_seed=5)}
    assert again == test  # order of listing does not matter
    two = cases[:2]
    assert len(D.select_split(two, "train", test_fraction=0.9, split_seed=0)) == 1  # one case always trains


def test_list_cohort_errors(tmp_path):
    with pytest.raises(InvalidParameterError, match="cohort folder not found"):
        D.list_cohort(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameterError, match="no cases found"):
        D.list_cohort(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cohort.json").write_text(json.dumps({"cases": ["x"]}))
    with pytest.raises(InvalidParameterError, match="missing"):
        D.list_cohort(tmp_path / "bad")


@pytest.fixture(scope="module")
def loaded(tiny_cohort):
    cases = D.select_split(D.list_cohort(tiny_cohort), "train", test_fraction=0.3, split_seed=0)
    return D.load_training_data(cases, _config(), cohort_dir=str(tiny_cohort), paired=True)


def test_loaded_data_shapes_windows_and_summary(loaded):
    # 5.07 mm at 0.104 mm -> 49 px; MDCT keeps its 6 slices, micro-CT 12 slices thinned by 2 -> 6
    assert loaded.mdct.images[0].shape == (6, 49, 49)
    assert loaded.microct.images[0].shape == (6, 49, 49)
    assert loaded.mdct.images[0].dtype == np.float16
    lo, hi = loaded.microct_window
    assert 500 < lo < 3000 and 7000 < hi < 12000  # marrow ~1000, bone ~10000 grey values
    for stack in (loaded.mdct, loaded.microct):
        values = np.concatenate([a.ravel() for a in stack.images]).astype(np.float32)
        assert values.min() >= -1 and values.max() <= 1
    summary = loaded.summary()
    assert summary["case_ids"] == ["case000", "case001"] and summary["n_mdct_slices"] == 12
    assert summary["n_microct_slices"] == 12 and summary["paired"] is True


def test_paired_slices_match_mdct_structure(loaded):
    """Paired micro-CT lies on the MDCT slice plane: it correlates far better than a shifted plane."""
    mdct = loaded.mdct.images[0].astype(np.float32)
    paired = loaded.paired_microct[0].astype(np.float32)
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(paired, sigma=(0, 2, 2))
    shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]
    scores = [np.corrcoef(mdct[2].ravel(), np.roll(blurred[2], s, axis=(0, 1)).ravel())[0, 1] for s in shifts]
    assert shifts[int(np.argmax(scores))] == (0, 0)  # best alignment without any shift
    same = max(scores)
    far = np.corrcoef(mdct[2].ravel(), np.roll(blurred[2], 8, axis=1).ravel())[0, 1]
    assert same > 0.5 and same > far + 0.4


def test_shard_indices_cover_without_overlap():
    shards = [D.shard_indices(10, r, 3) for r in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(10))
    assert all(set(a).isdisjoint(b) for i, a in enumerate(shards) for b in shards[i + 1 :])
    with pytest.raises(InvalidParameterError, match="fewer processes"):
        D.shard_indices(2, 0, 3)


def test_sampler_deterministic_and_resumable(loaded):
    make = lambda rank=0: D.SliceSampler(loaded, batch_size=3, crop_px=32, seed=7, rank=rank, world_size=2)
    a, b = make(), make()
    first = [a.next_batch() for _ in range(2)]
    np.testing.assert_array_equal(first[1]["mdct"], [b.next_batch() for _ in range(2)][1]["mdct"])
    state = a.state_dict()
    json.dumps(state)  # JSON-safe (checkpoints read it with weights_only)
    expected = a.next_batch()
    c = make()
    c.load_state_dict(state)
    got = c.next_batch()
    for key in ("mdct", "microct"):
        np.testing.assert_array_equal(got[key], expected[key])
        assert got[key].shape == (3, 1, 32, 32) and got[key].dtype == np.float32
    other_rank = make(rank=1).next_batch()
    assert not np.array_equal(other_rank["mdct"], first[0]["mdct"])
    # rank 1 only draws its own slices
    assert set(map(tuple, make(rank=1).mdct_shard.tolist())).isdisjoint(map(tuple, make(rank=0).mdct_shard.tolist()))


def test_bone_crops_hold_more_bone(loaded):
    bone = D.SliceSampler(loaded, batch_size=64, crop_px=16, seed=1, bone_crop_fraction=1.0, flip=False)
    anywhere = D.SliceSampler(loaded, batch_size=64, crop_px=16, seed=1, bone_crop_fraction=0.0, flip=False)
    centre_bone = bone.next_batch()["microct"][:, 0, 8, 8]
    centre_any = anywhere.next_batch()["microct"][:, 0, 8, 8]
    assert (centre_bone > 0).mean() > (centre_any > 0).mean() + 0.2


def test_paired_sampler_crops_same_place(loaded):
    sampler = D.SliceSampler(loaded, batch_size=8, crop_px=32, seed=3, paired=True)
    batch = sampler.next_batch()
    from scipy import ndimage

    mdct = batch["mdct"][:, 0]
    micro = ndimage.gaussian_filter(batch["microct"][:, 0], (0, 2, 2))
    r = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]
    matched = [r(a, b) for a, b in zip(mdct, micro)]
    mismatched = [r(a, b) for a, b in zip(mdct, np.roll(micro, 1, axis=0))]
    assert min(matched) > 0.3 and np.mean(matched) > np.mean(mismatched) + 0.3
    fixed = sampler.fixed_batch(4, seed=0)
    np.testing.assert_array_equal(fixed["mdct"], sampler.fixed_batch(4, seed=0)["mdct"])
    assert sampler.batches_drawn == 1  # fixed batches leave the training stream alone


def test_context_slabs_of_loaded_data(loaded):
    """The loader records each case's MDCT slice spacing; 0.3 mm context at 0.1 mm -> every 3rd slice."""
    assert loaded.mdct_slice_spacing_mm == pytest.approx([0.1, 0.1])
    sampler = D.SliceSampler(loaded, batch_size=6, crop_px=32, seed=5, context_slices=1, context_step_mm=0.3, flip=False)
    batch = sampler.next_batch()
    assert batch["mdct"].shape == (6, 3, 32, 32) and batch["microct"].shape == (6, 1, 32, 32)
    for slab in batch["mdct"]:  # find the slice and place of the centre, check the neighbours
        hits = [(c, z, top, left) for c, stack in enumerate(loaded.mdct.images) for z in range(stack.shape[0])
                for top in range(stack.shape[1] - 31) for left in range(stack.shape[2] - 31)
                if np.array_equal(stack[z, top:top + 32, left:left + 32], slab[1])]
        assert hits
        c, z, top, left = hits[0]
        stack = loaded.mdct.images[c]
        for j, zz in zip((0, 2), (max(z - 3, 0), min(z + 3, stack.shape[0] - 1))):
            np.testing.assert_array_equal(slab[j], stack[zz, top:top + 32, left:left + 32])
