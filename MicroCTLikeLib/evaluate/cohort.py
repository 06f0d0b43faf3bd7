"""The study's evaluation of several generators on a cohort's held-out specimens.

For each specimen of the split and each model (FUNIT, StarGAN, CycleGAN, pix2pixHD, ...):

1. the standard VOIs are placed on the MDCT (as a reader would);
2. the model generates its micro-CT-like volume around them (``region``);
3. BV/TV, Tb.Th, Tb.Sp are measured BoneJ-exactly in both VOIs of every volume: MDCT,
   each model's output, micro-CT and (when the cohort has it) the binary truth, every
   volume with one measurement recipe (``recipe``, :data:`.specimen.MEASUREMENT_RECIPES`;
   default ``"study"``: IsoData on each volume's own voxels);
4. similarity against the micro-CT, every image through one 8-bit recipe (MDCT through
   its HU window, every micro-CT-valued image through the reference micro-CT window):
   SSIM (Wang settings) *overall* = every generated slice in full, *cancellous* = the
   standard VOIs' bounding boxes (trabecular bone by construction); FID of the same two
   image sets when the FID Inception weights are given (:mod:`.fid`).

Slices are compared with the micro-CT at the same physical position: the cohort's frames
are registered (the simulator's are); ``pairing="sift"`` instead takes the micro-CT slices
that SIFT + DTW pairs with each MDCT slice (:mod:`.pairing`), for cohorts whose slice
positions do not correspond.

Per-case results are cached under ``OUT/cases/<case>/``: the reference measurements in
``reference.json`` and one ``<model>.json`` per model, each with a fingerprint (checkpoint
SHA-256, options, the measurement recipe); a rerun skips what is cached and recomputes what changed, so replacing
one checkpoint recomputes only its row. Numbers are per VOI (metrics) and per specimen
(similarity), never per slice.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..errors import InvalidParameterError

METRICS = ("bv_tv", "tb_th_mm", "tb_sp_mm")
METRIC_LABELS = {"bv_tv": "BV/TV", "tb_th_mm": "Tb.Th (mm)", "tb_sp_mm": "Tb.Sp (mm)"}
MDCT, MICROCT, TRUTH = "MDCT", "micro-CT", "truth (binary)"
CACHE_VERSION = 1
#: Display names of the architectures (the rows of the tables).
DISPLAY = {"funit": "FUNIT", "stargan": "StarGAN", "cyclegan": "CycleGAN", "pix2pixhd": "pix2pixHD"}


def parse_model_specs(specs: Sequence[str]) -> Dict[str, str]:
    """``["funit=bundled", "stargan=runs/s/last.pt"]`` -> {name: checkpoint path or "bundled"}.

    A bare path is named after the file's stem; names must be unique.
    """
    models: Dict[str, str] = {}
    for spec in specs:
        name, sep, path = str(spec).partition("=")
        if not sep:
            name, path = Path(spec).stem, spec
        name, path = name.strip(), path.strip()
        if not name or not path:
            raise InvalidParameterError(f"--models {spec!r}: use NAME=CHECKPOINT (or NAME=bundled)")
        if name in models or name in (MDCT, MICROCT, TRUTH):
            raise InvalidParameterError(f"--models: the name {name!r} is used twice or is reserved")
        models[name] = path
    if not models:
        raise InvalidParameterError("--models needs at least one NAME=CHECKPOINT")
    return models


def resolve_checkpoint(path: str) -> Path:
    from ..inference import bundled_model_path

    resolved = bundled_model_path() if path == "bundled" else Path(path)
    if not resolved.is_file():
        raise InvalidParameterError(f"{resolved}: generator checkpoint not found")
    return resolved


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(path: Path, fingerprint: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if data.get("fingerprint") == json.loads(json.dumps(fingerprint)) else None


def _recipe_options(recipe: str) -> Dict[str, Any]:
    from .specimen import MEASUREMENT_RECIPES

    if recipe not in MEASUREMENT_RECIPES:
        raise InvalidParameterError(f"unknown measurement recipe {recipe!r}; use {', '.join(MEASUREMENT_RECIPES)}")
    return dict(MEASUREMENT_RECIPES[recipe])


def _measure_all(volume, vois, cancel=None, recipe: str = "study") -> List[Dict[str, Any]]:
    from ..measurement import measure_in_voi

    options = _recipe_options(recipe)
    return [{"voi_name": voi.name, **measure_in_voi(volume, voi, cancel=cancel, **options).as_dict()} for voi in vois]


def _collect_warnings(function, *args, **kwargs):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = function(*args, **kwargs)
    return value, list(dict.fromkeys(str(w.message) for w in caught))


def reference_record(case, placement, mdct, microct, truth, *, recipe: str = "study", cancel=None) -> Dict[str, Any]:
    """Measurements of MDCT, micro-CT and the truth in the standard VOIs of one specimen (one recipe)."""
    volumes = {MDCT: mdct, MICROCT: microct}
    if truth is not None:
        volumes[TRUTH] = truth
    measurements = {}
    notes: List[str] = []
    for label, volume in volumes.items():
        measurements[label], caught = _collect_warnings(_measure_all, volume, placement.vois, cancel=cancel,
                                                          recipe=recipe)
        notes += caught
    return {"case": case.case_id, "placement": placement.to_dict(), "measurements": measurements,
            "recipe": recipe, "warnings": list(dict.fromkeys(notes))}


def similarity_images(like, mdct, microct, vois, *, mdct_window, microct_window, pairing=None):
    """8-bit images on the generated grid: {"overall"|"cancellous": {"generated"|"MDCT"|"micro-CT": [2-D]}}.

    ``pairing`` (optional): for each generated slice k, the indices of the micro-CT slices
    it is paired with (their mean is the reference); default the same physical position.
    """
    from ..voi import voi_slices
    from .similarity import sample_on_grid, window_to_8bit

    if pairing is None:
        reference = sample_on_grid(microct, like)
    else:
        reference = _paired_reference(like, microct, pairing)
    mdct_on_grid = sample_on_grid(mdct, like)
    images = {"overall": {"generated": window_to_8bit(like.array, microct_window),
                          MDCT: window_to_8bit(mdct_on_grid, mdct_window),
                          MICROCT: window_to_8bit(reference, microct_window)}}
    boxes = {"generated": [], MDCT: [], MICROCT: []}
    for voi in vois:
        box = voi_slices(like, voi, margin_mm=0.0)
        for key, stack in images["overall"].items():
            boxes[key].extend(list(stack[box]))
    images["cancellous"] = boxes
    images["overall"] = {key: list(stack) for key, stack in images["overall"].items()}
    return images


def _paired_reference(like, microct, pairing) -> np.ndarray:
    """Micro-CT on the generated grid in-plane, slice k = mean of its paired micro-CT slices."""
    from .similarity import sample_on_grid

    planes = []
    for k, partners in enumerate(pairing):
        plane = _single_slice(like, k)
        values = []
        for j in partners:
            # move the plane to micro-CT slice j's height, keeping its in-plane position
            shifted = _at_microct_slice(plane, microct, j)
            values.append(sample_on_grid(microct, shifted)[0])
        planes.append(np.mean(values, axis=0) if values else np.zeros(like.shape_zyx[1:], np.float32))
    return np.stack(planes)


def _single_slice(volume, k: int):
    from ..volume import Volume

    origin = volume.index_zyx_to_lps(np.array([k, 0, 0], float))
    return Volume(np.zeros((1,) + volume.shape_zyx[1:], np.float32), spacing_xyz_mm=volume.spacing_xyz_mm,
                  origin_lps_mm=tuple(origin), direction_lps=volume.direction_lps)


def _at_microct_slice(plane, microct, j: int):
    from ..volume import Volume

    target = microct.index_zyx_to_lps(np.array([j, 0, 0], float))
    axis = np.asarray(microct.direction_lps)[:, 2]
    origin = np.asarray(plane.origin_lps_mm, float)
    origin = origin + axis * float(np.dot(target - origin, axis))
    return Volume(plane.array, spacing_xyz_mm=plane.spacing_xyz_mm, origin_lps_mm=tuple(origin),
                  direction_lps=plane.direction_lps)


def ssim_of_sets(images: Mapping[str, Mapping[str, List[np.ndarray]]], method_key: str) -> Dict[str, float]:
    from .similarity import ssim_8bit

    out = {}
    for region, sets in images.items():
        values = [ssim_8bit(a, b) for a, b in zip(sets[method_key], sets[MICROCT])]
        out[region] = float(np.mean(values)) if values else float("nan")
    return out


def model_record(case, placement, mdct, microct, generator, metadata, *, reference_window, mdct_window, region,
                 device, recipe: str = "study", fid_network=None, pairing=None, progress=None,
                 cancel=None) -> Dict[str, Any]:
    """Generate with one model and measure (``recipe``): metrics per VOI, SSIM (and FID features) per region."""
    from ..inference import generate_volume

    started = time.perf_counter()
    like, generation = generate_volume(mdct, generator, metadata, region=region, device=device, progress=progress,
                                       cancel=cancel)
    measurements, notes = _collect_warnings(_measure_all, like, placement.vois, cancel=cancel, recipe=recipe)
    images = similarity_images(like, mdct, microct, placement.vois, mdct_window=mdct_window,
                               microct_window=reference_window, pairing=pairing)
    record = {"case": case.case_id, "measurements": measurements, "recipe": recipe, "generation": generation.to_dict(),
              "ssim": ssim_of_sets(images, "generated"), "ssim_mdct": ssim_of_sets(images, MDCT),
              "n_slices": {region_name: len(sets[MICROCT]) for region_name, sets in images.items()},
              "warnings": notes}
    features = None
    if fid_network is not None:
        from .fid import image_features

        features = {region_name: {key: image_features(fid_network, sets[key]) for key in ("generated", MDCT, MICROCT)}
                    for region_name, sets in images.items()}
    record["seconds"] = round(time.perf_counter() - started, 2)
    return {"record": record, "like": like, "features": features, "images": images}


def evaluate_study(cohort_dir, models: Mapping[str, str], out_dir, *, split: str = "test",
                   cases: Optional[Sequence[str]] = None, device: str = "auto", region: str = "standard-vois",
                   fid_weights=None, pairing: str = "geometry", recipe: str = "study",
                   progress: Optional[Callable] = None, log: Callable[[str], None] = print,
                   cancel=None) -> Dict[str, Any]:
    """Evaluate every model on the split's specimens; per-case results cached in ``out_dir/cases``.

    ``recipe`` names the measurement recipe (:data:`.specimen.MEASUREMENT_RECIPES`) of every
    volume: ``"study"`` (default, IsoData on each volume's own voxels) or ``"gold"`` (common
    0.052 mm grid, marrow/bone midpoint). It is part of every cached record's fingerprint, so
    a rerun with the other recipe measures again instead of reusing the first recipe's numbers.

    Returns the raw results: {"cohort", "split", "models": {name: info}, "cases": [{"case",
    "reference": record, "models": {name: record}}], "fid": {...} or None, "timings_s"}.
    """
    from ..inference import resolve_device
    from ..progress import report_progress
    from ..train.checkpoint import load_inference_model
    from ..train.data import list_cohort, select_split
    from ..voi import place_standard_vois
    from ..volume import read_volume
    from .report import write_json

    if pairing not in ("geometry", "sift"):
        raise InvalidParameterError(f"unknown pairing {pairing!r}; use geometry or sift")
    measurement = _recipe_options(recipe)
    out = Path(out_dir)
    (out / "cases").mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    all_cases = list_cohort(cohort_dir)
    if cases:
        wanted = set(cases)
        chosen = [c for c in all_cases if c.case_id in wanted]
        missing = wanted - {c.case_id for c in chosen}
        if missing:
            raise InvalidParameterError(f"{cohort_dir}: no case(s) {sorted(missing)}")
    else:
        chosen = select_split(all_cases, split, test_fraction=1.0 / 3.0, split_seed=0)
    checkpoints = {name: resolve_checkpoint(path) for name, path in models.items()}
    info: Dict[str, Dict[str, Any]] = {}
    loaded: Dict[str, Any] = {}
    for name, path in checkpoints.items():
        generator, metadata = load_inference_model(path, device=torch_device)
        loaded[name] = (generator, metadata)
        model = metadata.get("model") or {}
        info[name] = {"checkpoint": str(path), "spec": models[name], "sha256": file_sha256(path),
                      "architecture": model.get("name"), "preset": (model.get("config") or {}).get("preset"),
                      "step": metadata.get("step"), "parameters": metadata.get("parameter_counts"),
                      "training_data": metadata.get("training_data"),
                      "normalisation": metadata.get("normalisation")}
    first = next(iter(loaded.values()))[1]["normalisation"]
    reference_window = [float(v) for v in first["microct_window"]]
    mdct_window = [float(v) for v in first["mdct_window_hu"]]
    fid_network = None
    fid_status = "FID not computed: no FID Inception weights given (--fid-weights PATH or $MICROCTLIKE_FID_WEIGHTS)."
    if fid_weights:
        from .fid import load_fid_inception

        fid_network = load_fid_inception(fid_weights, device=torch_device)
        fid_status = f"FID with the FID Inception weights {fid_weights}."
    options = {"version": CACHE_VERSION, "region": region, "pairing": pairing, "reference_window": reference_window,
               "mdct_window": mdct_window, "fid": bool(fid_weights)}
    results = []
    started = time.perf_counter()
    n_units = len(chosen) * (1 + len(loaded))
    unit = 0
    for case in chosen:
        case_dir = out / "cases" / case.case_id
        case_dir.mkdir(parents=True, exist_ok=True)
        truth_path = Path(case.mdct_path).parent / "truth.nrrd"
        volumes: Dict[str, Any] = {}

        def volume(kind, path):
            if kind not in volumes:
                volumes[kind] = read_volume(path)
            return volumes[kind]

        placement_cache: Dict[str, Any] = {}

        def placement():
            if "p" not in placement_cache:
                placement_cache["p"] = place_standard_vois(volume("mdct", case.mdct_path))
            return placement_cache["p"]

        ref_fp = {"case": case.case_id, "files": [_file_stamp(case.mdct_path), _file_stamp(case.microct_path),
                                                  _file_stamp(truth_path) if truth_path.is_file() else None],
                  "version": CACHE_VERSION, "recipe": recipe}
        report_progress(progress, unit, n_units, f"{case.case_id} reference")
        reference = _read_cache(case_dir / "reference.json", ref_fp)
        if reference is None:
            log(f"{case.case_id}: measuring MDCT, micro-CT{' and truth' if truth_path.is_file() else ''} "
                f"({recipe} recipe) ...")
            reference = reference_record(case, placement(), volume("mdct", case.mdct_path),
                                         volume("microct", case.microct_path),
                                         volume("truth", truth_path) if truth_path.is_file() else None, recipe=recipe,
                                         cancel=cancel)
            reference["fingerprint"] = ref_fp
            write_json(reference, case_dir / "reference.json")
        else:
            log(f"{case.case_id}: reference cached")
        unit += 1
        pairs = None
        records = {}
        for name, (generator, metadata) in loaded.items():
            report_progress(progress, unit, n_units, f"{case.case_id} {name}")
            fingerprint = {**ref_fp, **options, "model": name, "sha256": info[name]["sha256"]}
            cache_path = case_dir / f"{name}.json"
            record = _read_cache(cache_path, fingerprint)
            if record is not None and (not fid_weights or (case_dir / f"{name}.fid.npz").is_file()):
                log(f"{case.case_id}: {name} cached")
            else:
                log(f"{case.case_id}: generating and measuring with {name} ...")
                if pairing == "sift" and pairs is None:
                    pairs = _sift_pairs(volume("mdct", case.mdct_path), volume("microct", case.microct_path),
                                        loaded[name][1], region, case_dir)
                result = model_record(case, placement(), volume("mdct", case.mdct_path),
                                      volume("microct", case.microct_path), generator, metadata,
                                      reference_window=reference_window, mdct_window=mdct_window, region=region,
                                      device=torch_device, recipe=recipe, fid_network=fid_network,
                                      pairing=pairs, cancel=cancel)
                record = result["record"]
                record["fingerprint"] = fingerprint
                if result["features"] is not None:
                    _save_features(case_dir / f"{name}.fid.npz", result["features"])
                write_json(record, cache_path)
                _save_preview(case_dir / f"{name}.preview.npz", result["images"])
            records[name] = record
            unit += 1
        results.append({"case": case.case_id, "reference": reference, "models": records})
    report_progress(progress, n_units, n_units, "done")
    fid = None
    if fid_weights:
        fid = _fid_from_cache(out, [r["case"] for r in results], list(loaded))
    return {"cohort": str(cohort_dir), "split": split if not cases else "cases", "region": region,
            "pairing": pairing, "measurement_recipe": recipe, "measurement": measurement, "models": info, "cases": results, "fid": fid, "fid_status": fid_status,
            "similarity_recipe": {"mdct_window_hu": mdct_window, "microct_window": reference_window,
                                  "ssim": "skimage structural_similarity, gaussian_weights=True, sigma=1.5, "
                                          "use_sample_covariance=False, data_range=255, per slice, mean per specimen",
                                  "overall": "every generated slice in full (the region around both standard VOIs)",
                                  "cancellous": "the standard VOIs' bounding boxes (trabecular bone)"},
            "timings_s": {"total": round(time.perf_counter() - started, 1)}}


def _file_stamp(path) -> List[Any]:
    stat = Path(path).stat()
    return [Path(path).name, stat.st_size, int(stat.st_mtime)]


def _save_features(path: Path, features) -> None:
    from ..atomic import atomic_output

    arrays = {f"{region}|{key}": value for region, sets in features.items() for key, value in sets.items()}
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def _save_preview(path: Path, images) -> None:
    """The middle overall slice of each image set (for the report's comparison figure)."""
    from ..atomic import atomic_output

    sets = images["overall"]
    middle = len(sets[MICROCT]) // 2
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{key.replace(" ", "_"): np.asarray(stack[middle]) for key, stack in sets.items()})


def _fid_from_cache(out: Path, case_ids: Sequence[str], names: Sequence[str]) -> Dict[str, Any]:
    """FID per specimen and pooled over the split: {region: {method: {"per_specimen": {...}, "pooled"}}}."""
    from .fid import frechet_distance_features

    result: Dict[str, Any] = {}
    loaded = {}
    for case_id in case_ids:
        for name in names:
            with np.load(out / "cases" / case_id / f"{name}.fid.npz") as data:
                loaded[(case_id, name)] = {key: data[key] for key in data.files}
    for region in ("overall", "cancellous"):
        per_method: Dict[str, Any] = {}
        methods = [(MDCT, names[0], MDCT)] + [(name, name, "generated") for name in names]
        for label, source, key in methods:
            per = {c: frechet_distance_features(loaded[(c, source)][f"{region}|{key}"],
                                                loaded[(c, source)][f"{region}|{MICROCT}"]) for c in case_ids}
            pooled = frechet_distance_features(
                np.concatenate([loaded[(c, source)][f"{region}|{key}"] for c in case_ids]),
                np.concatenate([loaded[(c, source)][f"{region}|{MICROCT}"] for c in case_ids]))
            per_method[label] = {"per_specimen": per, "pooled": pooled}
        result[region] = per_method
    return result


def _sift_pairs(mdct, microct, metadata, region, case_dir: Path):
    """Micro-CT slice indices paired with each generated slice (SIFT + DTW), cached per case."""
    from ..inference import region_slices
    from .pairing import pair_volumes

    slices, _ = region_slices(mdct, region)
    pairs = pair_volumes(mdct, microct, mdct_window=metadata["normalisation"]["mdct_window_hu"],
                         microct_window=metadata["normalisation"]["microct_window"], cache_dir=case_dir)
    return [pairs[k] for k in range(slices[0].start, slices[0].stop)]
