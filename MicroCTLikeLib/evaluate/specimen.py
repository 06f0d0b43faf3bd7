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

from ..inference import DEFAULT_VIEWS
from ..volume import Volume

METRICS = ("bv_tv", "tb_th_mm", "tb_sp_mm")

#: Measurement recipes (options of :func:`MicroCTLikeLib.measurement.measure_in_voi`); every
#: volume of an evaluation is measured with one recipe, which the results name.
#:
#: * ``"gold"`` (default): each volume resampled to the micro-CT's 0.052 mm voxels (a common
#:   grid, so BoneJ's pixel-width calibration means the same for all) and thresholded at the
#:   marrow/bone midpoint; on the simulator's micro-CT this reads the binary truth within
#:   ~10 % (see ``microctlike evaluate`` in the README).
#: * ``"study"``: the study's BoneJ recipe, ImageJ IsoData on each volume's own voxels.
MEASUREMENT_RECIPES = {
    "gold": {"threshold": "midpoint", "voxel_mm": 0.052},
    "study": {"threshold": "isodata", "voxel_mm": None},
}


#: the volumes whose measurements do not depend on the generator (cacheable across models)
REFERENCE_LABELS = ("MDCT", "micro-CT", "truth (binary)")


def evaluate_case(mdct: Volume, microct: Volume, generator, metadata, *, truth_binary: Optional[Volume] = None,
                  device=None, recipe: str = "gold", reference_measurements: Optional[Dict[str, Any]] = None,
                  views=DEFAULT_VIEWS, progress=None, cancel=None) -> Dict[str, Any]:
    """Generate and measure one specimen; returns the micro-CT-like volume and the numbers.

    ``recipe`` names the measurement recipe of :data:`MEASUREMENT_RECIPES` used for every volume.
    ``reference_measurements`` ({label: [per VOI]} for labels of :data:`REFERENCE_LABELS`, from
    an earlier call with the same recipe) are reused instead of measured again: the standard
    VOIs are placed deterministically on the MDCT, so they are the same VOIs. ``views``: the
    slice orientations generated (:func:`~MicroCTLikeLib.inference.generate_volume`).

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

    if recipe not in MEASUREMENT_RECIPES:
        from ..errors import InvalidParameterError

        raise InvalidParameterError(f"unknown measurement recipe {recipe!r}; use {', '.join(MEASUREMENT_RECIPES)}")
    options = MEASUREMENT_RECIPES[recipe]
    placement = place_standard_vois(mdct)
    like, generation = generate_volume(mdct, generator, metadata, region="standard-vois", device=device or "auto",
                                       views=views, progress=progress, cancel=cancel)
    volumes = {"MDCT": mdct, "micro-CT-like": like, "micro-CT": microct}
    if truth_binary is not None:
        volumes["truth (binary)"] = truth_binary
    known = reference_measurements or {}
    voi_names = [voi.name for voi in placement.vois]
    with warnings.catch_warnings(record=True) as caught:  # e.g. anisotropic MDCT voxels: report once, not per VOI
        warnings.simplefilter("always")
        measurements = {}
        for label, volume in volumes.items():
            if label in known and [entry["voi_name"] for entry in known[label]] == voi_names:
                measurements[label] = known[label]
                continue
            measurements[label] = [{"voi_name": voi.name, **measure_in_voi(volume, voi, cancel=cancel, **options).as_dict()}
                                   for voi in placement.vois]
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    norm = metadata["normalisation"]
    ssim: Dict[str, Dict[str, float]] = {"MDCT": {}, "micro-CT-like": {}}
    for voi in placement.vois:
        box = crop_to_voi(like, voi, margin_mm=0.0)
        true8 = window_to_8bit(sample_on_grid(microct, box), norm["microct_window"])
        ssim["micro-CT-like"][voi.name] = ssim_8bit(window_to_8bit(box.array, norm["microct_window"]), true8)
        ssim["MDCT"][voi.name] = ssim_8bit(window_to_8bit(sample_on_grid(mdct, box), norm["mdct_window_hu"]), true8)
    return {"like": like, "placement": placement, "generation": generation, "measurements": measurements, "ssim": ssim,
            "warnings": notes, "recipe": recipe}


def icc_single(ratings: np.ndarray) -> tuple:
    """(ICC(2,1), ICC(3,1)) of an (n subjects, k raters) table (Shrout & Fleiss 1979).

    ICC(2,1) = ICC(A,1) (McGraw & Wong): two-way random effects, absolute agreement, single
    rater; ICC(3,1) = ICC(C,1): two-way mixed, consistency. NaN where undefined (no variance).
    See :func:`MicroCTLikeLib.evaluate.statistics.icc`, which this returns two values of.
    """
    from .statistics import icc

    result = icc(ratings)
    return result["icc_a1"], result["icc_c1"]


def agreement(method: Sequence[float], reference: Sequence[float]) -> Dict[str, float]:
    """How one measurement agrees with a reference over paired units (VOIs or specimens).

    Returns ``r2`` (squared Pearson correlation = R^2 of the linear regression),
    ``icc_a1`` (Shrout & Fleiss ICC(2,1): two-way random effects, absolute agreement, single
    measurement), ``icc_c1`` (ICC(3,1), consistency), ``bias`` (mean of method - reference),
    ``bias_percent`` (100 x bias / mean reference) and ``n``.
    """
    y = np.column_stack([np.asarray(method, dtype=float), np.asarray(reference, dtype=float)])
    n = y.shape[0]
    if n < 3:
        from ..errors import InvalidParameterError

        raise InvalidParameterError(f"agreement needs at least 3 paired values, got {n}")
    icc_a1, icc_c1 = icc_single(y)
    r = np.corrcoef(y[:, 0], y[:, 1])[0, 1] if y[:, 0].std() > 0 and y[:, 1].std() > 0 else 0.0
    bias = float((y[:, 0] - y[:, 1]).mean())
    return {"n": int(n), "r2": float(r * r), "icc_a1": float(icc_a1), "icc_c1": float(icc_c1), "bias": bias,
            "bias_percent": float(100.0 * bias / y[:, 1].mean()) if y[:, 1].mean() else float("nan")}


def _agreement_table(cases, labels, reference) -> Dict[str, Dict[str, Dict[str, float]]]:
    table = {}
    for label in labels:
        table[label] = {
            m: agreement([e[m] for c in cases for e in c["measurements"][label]],
                         [r[m] for c in cases for r in c["measurements"][reference]])
            for m in METRICS
        }
    return table


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
    # per specimen: mean SSIM over its VOIs; the unit of analysis is the specimen, never the slice
    per_specimen = [{"case": c.get("case"), **{label: float(np.mean(list(c["ssim"][label].values())))
                                                for label in ("MDCT", "micro-CT-like")}} for c in cases]
    summary["ssim_per_specimen"] = per_specimen
    if per_specimen:
        better = [p["micro-CT-like"] > p["MDCT"] for p in per_specimen]
        summary["ssim_like_above_mdct_fraction"] = float(np.mean(better))
        summary["ssim_ratio_like_to_mdct"] = summary["ssim_mean"]["micro-CT-like"] / summary["ssim_mean"]["MDCT"]
    # agreement over VOIs: R^2 and ICC(A,1) against the micro-CT and against the binary truth
    if summary["n_vois"] >= 3:
        summary[f"agreement_vs_{reference}"] = _agreement_table(cases, ("MDCT", "micro-CT-like"), reference)
        if labels and "truth (binary)" in labels:
            summary["agreement_vs_truth"] = _agreement_table(cases, ("MDCT", "micro-CT-like", "micro-CT"),
                                                             "truth (binary)")
    if labels and "truth (binary)" in labels:
        summary["mean_abs_error_vs_truth"] = {
            label: {m: float(np.mean([abs(e[m] - r[m]) for c in cases
                                      for e, r in zip(c["measurements"][label], c["measurements"]["truth (binary)"])]))
                    for m in METRICS}
            for label in ("MDCT", "micro-CT-like", "micro-CT")
        }
    return summary


def evaluate_cohort(checkpoint, cohort_dir, *, split: str = "test", cases: Optional[List[str]] = None,
                    device: str = "auto", recipe: str = "gold", reference_cache_dir=None, views=DEFAULT_VIEWS,
                    progress=None, cancel=None) -> Dict[str, Any]:
    """:func:`evaluate_case` on the specimens of a cohort folder's split (default: test).

    ``reference_cache_dir``: a folder where the generator-independent measurements (MDCT,
    micro-CT, truth) of each case and recipe are kept as JSON and reused by later runs
    (comparing several generators on one cohort measures those once).

    Returns {"checkpoint", "cohort", "split", "cases": [per-case numbers], "summary"}.
    """
    import json
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
        cache_file = None if reference_cache_dir is None else Path(reference_cache_dir) / f"{case.case_id}.{recipe}.json"
        known = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file and cache_file.is_file() else None
        outcome = evaluate_case(read_volume(case.mdct_path), read_volume(case.microct_path), generator, metadata,
                                truth_binary=read_volume(truth_path) if truth_path.is_file() else None,
                                device=torch_device, recipe=recipe, reference_measurements=known, views=views,
                                cancel=cancel)
        if cache_file is not None and known is None:
            from ..atomic import atomic_write_bytes

            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(cache_file, json.dumps({label: outcome["measurements"][label] for label in REFERENCE_LABELS
                                                      if label in outcome["measurements"]}).encode("utf-8"))
        results.append({"case": case.case_id, "measurements": outcome["measurements"], "ssim": outcome["ssim"],
                        "generation": outcome["generation"].to_dict(), "warnings": outcome["warnings"]})
    report_progress(progress, len(chosen), len(chosen), "done")
    return {"checkpoint": str(checkpoint), "cohort": str(cohort_dir), "split": split, "recipe": recipe,
            "views": list(views),
            "measurement": dict(MEASUREMENT_RECIPES[recipe]),
            "model_step": metadata.get("step"), "cases": results, "summary": summarise(results)}
