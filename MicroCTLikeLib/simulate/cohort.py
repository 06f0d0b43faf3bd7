"""Write a synthetic cohort to disk: one folder per specimen plus a manifest.

Layout::

    DIR/cohort.json              manifest: preset, seed, version, cases, train/test split
    DIR/case_000/mdct.nrrd       int16 HU, 0.195 x 0.195 x 0.1 mm (rotated grid)
    DIR/case_000/microct.nrrd    int16 micro-CT HU, 0.052 mm
    DIR/case_000/truth.nrrd      uint8 0/255 binary truth, 0.052 mm
    DIR/case_000/truth.json      parameters, achieved BV/TV, body geometry, VOI truth

Each case is written into a hidden temporary folder and renamed into place, so a crash
or a cancel never leaves a half-written case; JSON files are written atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import numpy as np

from .. import __version__
from ..atomic import remove_stale_temporaries, temp_prefix
from ..errors import CancelledError, InvalidParameterError
from ..outputs import check_output_dir, write_json_atomic  # noqa: F401  (old home of both; still importable here)
from ..progress import CancelFlag, ProgressCallback, raise_if_cancelled, report_progress
from ..volume import write_volume
from .parameters import get_preset
from .specimen import Specimen, simulate_specimen
from .truth_metrics import truth_metrics_hook

#: fraction of specimens suggested for testing (the study: 50 train / 25 test)
TEST_FRACTION = 1.0 / 3.0


def case_seed(cohort_seed: int, index: int) -> int:
    """Seed of case ``index``: independent of how many cases the cohort has."""
    words = np.random.SeedSequence(int(cohort_seed), spawn_key=(int(index),)).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 32 | int(words[1])


def case_id(index: int) -> str:
    return f"case_{index:03d}"


def suggest_split(cohort_seed: int, n_cases: int) -> Dict[str, list]:
    """Train/test split by specimen (a third for testing, at least one when n >= 2)."""
    n_test = int(round(n_cases * TEST_FRACTION))
    if n_cases >= 2:
        n_test = min(max(n_test, 1), n_cases - 1)
    else:
        n_test = 0
    rng = np.random.default_rng(np.random.SeedSequence(int(cohort_seed), spawn_key=(2**31,)))
    order = rng.permutation(n_cases)
    test = sorted(int(i) for i in order[:n_test])
    return {"train": [case_id(i) for i in range(n_cases) if i not in test], "test": [case_id(i) for i in test]}


#: permissions of what we write (temporary files are created private: open them up)
_FILE_MODE = 0o644
_DIR_MODE = 0o755


def write_specimen(specimen: Specimen, case_dir: Path, *, extra_truth: Optional[Dict[str, Any]] = None) -> None:
    """Write one specimen's three volumes and truth.json into ``case_dir`` (created)."""
    case_dir.mkdir(parents=True, exist_ok=True)
    write_volume(specimen.mdct, case_dir / "mdct.nrrd")
    write_volume(specimen.microct, case_dir / "microct.nrrd")
    write_volume(specimen.truth_binary, case_dir / "truth.nrrd")
    write_json_atomic({**specimen.truth, **(extra_truth or {})}, case_dir / "truth.json")
    for name in ("mdct.nrrd", "microct.nrrd", "truth.nrrd"):
        os.chmod(case_dir / name, _FILE_MODE)


def write_cohort(
    out_dir: Union[str, os.PathLike],
    n_cases: int,
    seed: int,
    preset: str = "small",
    *,
    force: bool = False,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelFlag] = None,
    metrics_hook: Optional[Callable[[Specimen], Dict[str, Any]]] = truth_metrics_hook,
    on_case: Optional[Callable[[str, Specimen], None]] = None,
) -> Dict[str, Any]:
    """Simulate ``n_cases`` specimens from ``seed`` and write them under ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Destination folder; created if missing. A non-empty folder is refused unless
        ``force`` (then case folders of the same names and the manifest are replaced;
        other files are left alone).
    n_cases : int
        Number of specimens (>= 1).
    seed : int
        Cohort seed; case i uses :func:`case_seed` (seed, i), recorded in the manifest.
    preset : {"small", "full", "tiny"}
        See :func:`~MicroCTLikeLib.simulate.simulate_specimen`.
    metrics_hook : callable or None
        ``hook(specimen) -> dict`` stored as ``truth.json["voi_truth"]``; default
        :func:`~MicroCTLikeLib.simulate.truth_metrics.truth_metrics_hook`.
    on_case : callable or None
        ``on_case(case_id, specimen)`` after a case is written (e.g. to collect montage
        panels) while its volumes are still in memory.

    Returns
    -------
    dict: the manifest written to ``out_dir/cohort.json``.
    """
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 1:
        raise InvalidParameterError(f"number of cases must be a positive integer, got {n_cases!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative integer, got {seed!r}")
    get_preset(preset)
    out = check_output_dir(out_dir, force=force)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # case folders of a killed earlier run

    steps_per_case = 6  # 5 simulation stages + writing
    total = n_cases * steps_per_case
    cases = []
    for index in range(n_cases):
        cid = case_id(index)
        seed_i = case_seed(seed, index)

        def case_progress(done: int, _total: int, message: str, _base=index * steps_per_case, _cid=cid) -> None:
            report_progress(progress, _base + min(done, steps_per_case - 1), total, f"{_cid}: {message}")

        specimen = simulate_specimen(seed_i, preset=preset, progress=case_progress, cancel=cancel)
        extra = {"case_id": cid, "cohort_seed": int(seed), "case_index": index}
        if metrics_hook is not None:
            extra["voi_truth"] = metrics_hook(specimen)
        raise_if_cancelled(cancel, "cohort writing")
        tmp_dir = Path(tempfile.mkdtemp(prefix=temp_prefix(cid), dir=out))
        try:
            write_specimen(specimen, tmp_dir, extra_truth=extra)
            os.chmod(tmp_dir, _DIR_MODE)
            final = out / cid
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp_dir, final)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        if on_case is not None:
            on_case(cid, specimen)
        cases.append(
            {
                "case_id": cid,
                "seed": seed_i,
                "target_bv_tv": specimen.truth["parameters"]["target_bv_tv"],
                "achieved_bv_tv": specimen.truth["achieved_bv_tv"],
                "files": {"mdct": f"{cid}/mdct.nrrd", "microct": f"{cid}/microct.nrrd", "truth": f"{cid}/truth.nrrd", "truth_json": f"{cid}/truth.json"},
            }
        )
        report_progress(progress, (index + 1) * steps_per_case, total, f"{cid} written")

    manifest = {
        "format": "microctlike-synthetic-cohort/1",
        "simulator_version": __version__,
        "preset": preset,
        "seed": int(seed),
        "n_cases": int(n_cases),
        "cases": cases,
        "split": suggest_split(seed, n_cases),
        "split_note": "suggestion by specimen: never put slices of one specimen in both sets",
    }
    write_json_atomic(manifest, out / "cohort.json")
    return manifest


__all__ = ["write_cohort", "write_specimen", "case_seed", "suggest_split", "check_output_dir", "write_json_atomic",
           "CancelledError"]
