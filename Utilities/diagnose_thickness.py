"""Where does a generator's excess trabecular thickness come from? One specimen, standard VOIs.

``python Utilities/diagnose_thickness.py CASE_DIR [--model CKPT]`` (CASE_DIR holds mdct.nrrd and
microct.nrrd, e.g. a case of a validation cohort; never tune on the held-out cohort). Rows:

* ``micro-CT``: the reference, gold recipe (midpoint threshold on the 0.052 mm grid);
* ``micro-CT on the generator's grid``: the micro-CT resampled (anti-aliased, as for training)
  onto the grid the generator writes (its in-plane pixel, the MDCT's slices): the best any
  generator on that grid can read;
* ``micro-CT-like``: the generator's output.

Columns: BV/TV, Tb.Th, Tb.Sp (gold recipe) and the mean bone chord length along z, y and x
(mm) of the gold recipe's binarisation of the first VOI's box: a texture that is thick in-plane
and one that is elongated along the slices read differently here, alike in Tb.Th.
"""

from __future__ import annotations

import argparse

import numpy as np


def mean_chord_mm(binary: np.ndarray, axis: int, voxel_mm: float) -> float:
    """Mean length (mm) of the runs of True voxels along ``axis``."""
    runs = np.moveaxis(binary, axis, -1).reshape(-1, binary.shape[axis]).astype(np.int8)
    edges = np.diff(np.pad(runs, ((0, 0), (1, 1))), axis=1)
    starts, ends = np.nonzero(edges == 1)[1], np.nonzero(edges == -1)[1]
    return float((ends - starts).mean() * voxel_mm) if starts.size else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--model", default=None, help="generator checkpoint (default: the bundled one)")
    args = parser.parse_args()

    from MicroCTLikeLib.inference import bundled_model_path, generate_volume, region_slices
    from MicroCTLikeLib.measurement import COMMON_GRID_VOXEL_MM, measure_in_voi, resample_isotropic, voi_crop
    from MicroCTLikeLib.morphometry.conversion import default_display_range
    from MicroCTLikeLib.morphometry.thresholds import auto_threshold, histogram_8bit
    from MicroCTLikeLib.train.checkpoint import load_inference_model
    from MicroCTLikeLib.train.data import resample_inplane
    from MicroCTLikeLib.voi import crop_volume, place_standard_vois
    from MicroCTLikeLib.volume import Volume, read_volume

    mdct, micro = read_volume(f"{args.case}/mdct.nrrd"), read_volume(f"{args.case}/microct.nrrd")
    generator, metadata = load_inference_model(args.model or bundled_model_path(), device="cpu")
    like, _ = generate_volume(mdct, generator, metadata, region="standard-vois", device="cpu")
    spacing = float(metadata["normalisation"]["target_spacing_mm"])
    grid = resample_inplane(crop_volume(mdct, region_slices(mdct, "standard-vois")[0]), spacing, default_value=-1000.0)
    on_grid = Volume.from_sitk(resample_inplane(micro, spacing, reference=grid, default_value=float(micro.array.min())))
    vois = place_standard_vois(mdct).vois
    print(f"{'volume':34s} {'BV/TV':>6s} {'Tb.Th':>6s} {'Tb.Sp':>6s}   chord z / y / x (mm)")
    for label, volume in (("micro-CT", micro), (f"micro-CT on the generator's grid", on_grid), ("micro-CT-like", like)):
        results = [measure_in_voi(volume, voi, threshold="midpoint", voxel_mm=COMMON_GRID_VOXEL_MM) for voi in vois]
        window = default_display_range(volume.array)
        box = resample_isotropic(voi_crop(volume, vois[0], margin_mm=0.5), COMMON_GRID_VOXEL_MM).array
        grey8 = np.clip((box - window[0]) / (window[1] - window[0]) * 255.0, 0, 255).astype(np.uint8)
        binary = grey8 > auto_threshold(histogram_8bit(grey8), method="midpoint")
        chords = " / ".join(f"{mean_chord_mm(binary, axis, COMMON_GRID_VOXEL_MM):.3f}" for axis in (0, 1, 2))
        mean = {k: np.mean([getattr(r, k) for r in results]) for k in ("bv_tv", "tb_th_mm", "tb_sp_mm")}
        print(f"{label:34s} {mean['bv_tv']:6.3f} {mean['tb_th_mm']:6.3f} {mean['tb_sp_mm']:6.3f}   {chords}")


if __name__ == "__main__":
    main()
