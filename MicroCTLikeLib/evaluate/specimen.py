"""Evaluate a generator on specimens with a known micro-CT: similarity and morphometry.

For each specimen (MDCT + micro-CT, optionally the binary truth):

1. the standard VOIs are placed on the MDCT (as a radiologist would);
2. the micro-CT-like volume is generated around them;
3. BV/TV, Tb.Th, Tb.Sp are measured BoneJ-exactly in both VOIs on the MDCT, the
   micro-CT-like volume, the micro-CT (and the truth);
4. SSIM (Wang settings, 8-bit through each modality's training window) of MDCT and of the
   micro-CT-like volume against the micro-CT, on the micro-CT-like grid inside each VOI's
   bounding box (the cancellous region).

The unit of analysis is the VOI or the specimen, never the slice.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..volume import Volume

METRICS = ("bv_tv", "tb_th_mm", "tb_sp_mm")


def evaluate_case(mdct: Volume, microct: Volume, generator, metadata, *, truth_binary: Optional[Volume] = None,
                  device=None, progress=None, cancel=None) -> Dict[str, Any]:
    """Generate and measure one specimen; returns the micro-CT-like volume and the numbers.

    Returns
    -------
    dict with ``like`` (Volume), ``placement`` (StandardPlacement), ``generation``
    (GenerationReport), ``measurements`` ({volume label: [one dict per VOI]}) and ``ssim``
    ({"MDCT"|"micro-CT-like": {voi name: SSIM}}) and ``warnings`` (distinct messages of the
    measurements, e.g. anisotropic voxels).
    """
    from ..inference import generate_volume
    from ..measurement import measure_in_voi
    from .similarity import sample_on_grid, ssim_8bit, window_to_8bit
    from ..voi import crop_to_voi, place_standard_vois

    placement = place_standard_vois(mdct)
    like, generation = generate_volume(mdct, generator, metadata, region="standard-vois", device=device or "auto",
                                       progress=progress, cancel=cancel)
    volumes = {"MDCT": mdct, "micro-CT-like": like, "micro-CT": microct}
    if truth_binary is not None:
        volumes["truth (binary)"] = truth_binary
    with warnings.catch_warnings(record=True) as caught:  # e.g. anisotropic MDCT voxels: report once, not per VOI
        warnings.simplefilter("always")
        measurements = {
            label: [{"voi_name": voi.name, **measure_in_voi(volume, voi, cancel=cancel).as_dict()}
                    for voi in placement.vois]
            for label, volume in volumes.items()
        }
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    norm = metadata["normalisation"]
    ssim: Dict[str, Dict[str, float]] = {"MDCT": {}, "micro-CT-like": {}}
    for voi in placement.vois:
        box = crop_to_voi(like, voi, margin_mm=0.0)
        true8 = window_to_8bit(sample_on_grid(microct, box), norm["microct_window"])
        ssim["micro-CT-like"][voi.name] = ssim_8bit(window_to_8bit(box.array, norm["microct_window"]), true8)
        ssim["MDCT"][voi.name] = ssim_8bit(window_to_8bit(sample_on_grid(mdct, box), norm["mdct_window_hu"]), true8)
    return {"like": like, "placement": placement, "generation": generation, "measurements": measurements, "ssim": ssim,
            "warnings": notes}


def summarise(cases: Sequence[Dict[str, Any]], reference: str = "micro-CT") -> Dict[str, Any]:
    """Means over specimens of SSIM and of the metrics, and mean absolute errors against ``reference``.

    ``cases`` are the JSON parts of :func:`evaluate_case` results (measurements, ssim).
    """
    summary: Dict[str, Any] = {"n_specimens": len(cases), "n_vois": sum(len(c["ssim"]["MDCT"]) for c in cases)}
    summary["ssim_mean"] = {label: float(np.mean([v for c in cases for v in c["ssim"][label].values()]))
                            for label in ("MDCT", "micro-CT-like")}
    labels = list(cases[0]["measurements"]) if cases else []
    summary["metric_means"] = {
        label: {m: float(np.mean([e[m] for c in cases for e in c["measurements"][label]])) for m in METRICS}
        for label in labels
    }
    errors = {}
    for label in ("MDCT", "micro-CT-like"):
        errors[label] = {
            m: float(np.mean([abs(e[m] - r[m]) for c in cases
                              for e, r in zip(c["measurements"][label], c["measurements"][reference])]))
            for m in METRICS
        }
    summary[f"mean_abs_error_vs_{reference}"] = errors
    if labels and "truth (binary)" in labels:
        summary["mean_abs_error_vs_truth"] = {
            label: {m: float(np.mean([abs(e[m] - r[m]) for c in cases
                                      for e, r in zip(c["measurements"][label], c["measurements"]["truth (binary)"])]))
                    for m in METRICS}
            for label in ("MDCT", "micro-CT-like", "micro-CT")
        }
    return summary


def evaluate_cohort(checkpoint, cohort_dir, *, split: str = "test", cases: Optional[List[str]] = None,
                    device: str = "auto", progress=None, cancel=None) -> Dict[str, Any]:
    """:func:`evaluate_case` on the specimens of a cohort folder's split (default: test).

    Returns {"checkpoint", "cohort", "split", "cases": [per-case numbers], "summary"}.
    """
    from ..errors import InvalidParameterError
    from ..inference import resolve_device
    from ..progress import report_progress
    from ..train.checkpoint import load_inference_model
    from ..train.data import list_cohort, select_split
    from ..volume import read_volume

    torch_device = resolve_device(device)
    generator, metadata = load_inference_model(checkpoint, device=torch_device)
    all_cases = list_cohort(cohort_dir)
    if cases:
        chosen = [c for c in all_cases if c.case_id in set(cases)]
    else:
        chosen = select_split(all_cases, split, test_fraction=1.0 / 3.0, split_seed=0)
    if not chosen:
        raise InvalidParameterError(f"{cohort_dir}: no specimens in split {split!r}")
    results = []
    for index, case in enumerate(chosen):
        report_progress(progress, index, len(chosen), case.case_id)
        truth_path = Path(case.mdct_path).parent / "truth.nrrd"
        outcome = evaluate_case(read_volume(case.mdct_path), read_volume(case.microct_path), generator, metadata,
                                truth_binary=read_volume(truth_path) if truth_path.is_file() else None,
                                device=torch_device, cancel=cancel)
        results.append({"case": case.case_id, "measurements": outcome["measurements"], "ssim": outcome["ssim"],
                        "generation": outcome["generation"].to_dict(), "warnings": outcome["warnings"]})
    report_progress(progress, len(chosen), len(chosen), "done")
    return {"checkpoint": str(checkpoint), "cohort": str(cohort_dir), "split": split,
            "model_step": metadata.get("step"), "cases": results, "summary": summarise(results)}
