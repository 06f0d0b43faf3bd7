"""Generation speed: slices per second for a standard-VOI region and for a full 100 mm slice.

Run: ``python benchmarks/bench_generate.py [--model CKPT] [--baseline CKPT] [--region-only] [--repeats N]``.

``--baseline`` times another generator on the same region in the same run (e.g. the previously
bundled one) and prints the ratio; the region row also gives the seconds for one specimen's
standard-VOI region (SPECIMEN_SLICES slices, both VOIs with margins at 0.1 mm slices).

* CPU: the region around the standard VOIs (what the Slicer module generates by default on
  a CPU) and one full 100 mm field of view slice at the model's target spacing, whole-slice
  mode, and the exact tiled mode on the full slice (its cost relative to whole slices);
* CPU end to end (``generate_volume``: resampling, translation, views): one specimen's
  standard-VOI region as an MDCT volume (REGION_MM x REGION_MM in-plane at 0.195 mm,
  SPECIMEN_SLICES slices of 0.1 mm), with the axial view alone (the study's) and with
  the three orthogonal views averaged (``--views all``);
* CUDA (when present): full slices in batches, fp32 vs bf16, with the peak GPU memory.

Uses the bundled generator, or ``--model``; without either, an untrained generator of the
bundled architecture (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from MicroCTLikeLib.inference import bundled_model_path, translate_slices

FOV_MM = 100.0  # the study's MDCT field of view
REGION_MM = 19.0  # a 15 mm VOI plus 2 mm of context on each side
SPECIMEN_SLICES = 130  # two 5 mm VOIs about mid-height plus margins, at 0.1 mm slices


def _generator(model_path, device):
    from MicroCTLikeLib.train.checkpoint import load_inference_model

    path = Path(model_path) if model_path else bundled_model_path()
    if path.is_file():
        generator, meta = load_inference_model(path, device=device)
        return generator, float(meta["normalisation"]["target_spacing_mm"]), f"{path.name} (step {meta.get('step')})"
    from MicroCTLikeLib.models import registry

    config = registry.model_config("funit", "small", gen_nf=16, gen_mlp_dim=64, dis_nf=16, dis_max_nf=128)
    model = registry.build_model(config)
    model.update_class_code(torch.zeros(1, 1, 64, 64))
    return model.inference_generator().eval().to(device), 0.104, "untrained FUNIT nf=16 (no bundled model found)"


def _time(generator, slices, device, repeats, **kwargs):
    # a generator with context slices (FUNIT context_slices) gets its slabs; 3 slices = 0.3 mm at 0.1 mm
    kwargs.update(context_slices=int(getattr(generator, "context_slices", 0)), context_step_slices=3)
    translate_slices(generator, slices[:1], device=device, **kwargs)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        translate_slices(generator, slices, device=device, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeats
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return slices.shape[0] / seconds, peak


def _time_specimen(generator, spacing_mm, views, repeats):
    """Seconds of generate_volume for one specimen's standard-VOI region (synthetic HU)."""
    from MicroCTLikeLib.inference import generate_volume
    from MicroCTLikeLib.volume import Volume

    side = int(round(REGION_MM / 0.195))
    rng = np.random.default_rng(1)
    mdct = Volume(rng.uniform(-200, 1500, (SPECIMEN_SLICES, side, side)).astype(np.float32),
                  spacing_xyz_mm=(0.195, 0.195, 0.1))
    metadata = {"normalisation": {"target_spacing_mm": spacing_mm, "mdct_window_hu": [-200.0, 1800.0],
                                  "microct_window": [0.0, 2000.0]}}
    generate_volume(mdct, generator, metadata, device="cpu", views=views, batch_size=1)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        generate_volume(mdct, generator, metadata, device="cpu", views=views, batch_size=1)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--baseline", default=None, help="a second checkpoint timed on the same region")
    parser.add_argument("--region-only", action="store_true", help="skip the full-slice rows")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    results = []
    cpu = torch.device("cpu")
    generator, spacing_mm, label = _generator(args.model, cpu)
    region_px = int(round(REGION_MM / spacing_mm))
    full_px = int(round(FOV_MM / spacing_mm))
    region = rng.uniform(-1, 1, (8, region_px, region_px)).astype(np.float32)
    full = rng.uniform(-1, 1, (1, full_px, full_px)).astype(np.float32)
    print(f"model: {label}; target spacing {spacing_mm} mm; torch threads {torch.get_num_threads()}")
    cases = [("CPU region (standard VOIs)", region, "whole")]
    if not args.region_only:
        cases += [("CPU full 100 mm slice", full, "whole"), ("CPU full 100 mm slice, exact tiles", full, "tiles")]
    for name, slices, mode in cases:
        rate, _ = _time(generator, slices, cpu, args.repeats, mode=mode, batch_size=1)
        results.append({"case": name, "size_px": slices.shape[1], "slices_per_s": rate})
    results[0]["seconds_per_specimen"] = SPECIMEN_SLICES / results[0]["slices_per_s"]
    if not getattr(generator, "context_slices", 0):  # views need a generator without context slices
        for views in (("axial",), ("axial", "coronal", "sagittal")):
            seconds = _time_specimen(generator, spacing_mm, views, args.repeats)
            results.append({"case": f"CPU specimen end to end, views {'+'.join(views)}", "size_px": region_px,
                            "slices_per_s": SPECIMEN_SLICES / seconds, "seconds_per_specimen": seconds})
    if not args.region_only:
        results[2]["cost_vs_whole"] = results[1]["slices_per_s"] / results[2]["slices_per_s"]
    if args.baseline:
        baseline, _, baseline_label = _generator(args.baseline, cpu)
        rate, _ = _time(baseline, region, cpu, args.repeats, mode="whole", batch_size=1)
        results.append({"case": f"CPU region, baseline {baseline_label}", "size_px": region_px, "slices_per_s": rate,
                        "seconds_per_specimen": SPECIMEN_SLICES / rate,
                        "model_vs_baseline": results[0]["slices_per_s"] / rate})
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        generator, _, _ = _generator(args.model, cuda)
        batch = rng.uniform(-1, 1, (16, full_px, full_px)).astype(np.float32)
        for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            rate, peak = _time(generator, batch, cuda, max(args.repeats, 3), mode="whole", batch_size=8,
                               autocast_dtype=dtype)
            results.append({"case": f"CUDA full slice {precision} ({torch.cuda.get_device_name()})", "size_px": full_px,
                            "slices_per_s": rate, "peak_gib": peak})
        results[-1]["speedup_vs_fp32"] = results[-1]["slices_per_s"] / results[-2]["slices_per_s"]
    else:
        print("no CUDA device: GPU rows skipped")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':<62} {'px':>6} {'slices/s':>10}  notes")
    for row in results:
        notes = []
        if "seconds_per_specimen" in row:
            notes.append(f"{row['seconds_per_specimen']:.1f} s per specimen ({SPECIMEN_SLICES} slices)")
        if "model_vs_baseline" in row:
            notes.append(f"model speed {row['model_vs_baseline']:.2f}x the baseline's")
        if "cost_vs_whole" in row:
            notes.append(f"{row['cost_vs_whole']:.1f}x the time of a whole slice")
        if row.get("peak_gib") is not None:
            notes.append(f"peak {row['peak_gib']:.2f} GiB")
        if "speedup_vs_fp32" in row:
            notes.append(f"{row['speedup_vs_fp32']:.2f}x fp32")
        print(f"{row['case']:<62} {row['size_px']:>6} {row['slices_per_s']:>10.3f}  {'; '.join(notes)}")


if __name__ == "__main__":
    main()
