"""Cohort writer and the ``microctlike simulate`` command (run as a user runs it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from MicroCTLikeLib.errors import CancelledError, InvalidParameterError
from MicroCTLikeLib.simulate import case_seed, simulate_specimen, suggest_split, write_cohort
from MicroCTLikeLib.volume import read_volume

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "sim"
    seen = []
    manifest = write_cohort(out, 2, 11, "tiny", on_case=lambda cid, specimen: seen.append(cid))
    return out, manifest, seen


def test_cohort_layout_manifest_and_truth(cohort):
    out, manifest, seen = cohort
    assert seen == ["case_000", "case_001"]
    on_disk = json.loads((out / "cohort.json").read_text())
    assert on_disk == manifest
    assert manifest["preset"] == "tiny" and manifest["seed"] == 11 and manifest["n_cases"] == 2
    assert manifest["simulator_version"]
    assert sorted(manifest["split"]["train"] + manifest["split"]["test"]) == ["case_000", "case_001"]
    assert len(manifest["split"]["test"]) == 1
    for index, case in enumerate(manifest["cases"]):
        folder = out / case["case_id"]
        assert case["seed"] == case_seed(11, index)
        for name in ("mdct.nrrd", "microct.nrrd", "truth.nrrd", "truth.json"):
            assert (folder / name).is_file()
            assert (folder / name).stat().st_mode & 0o044 == 0o044  # readable by others, not private temp files
        truth = json.loads((folder / "truth.json").read_text())
        assert truth["seed"] == case["seed"] and truth["case_id"] == case["case_id"]
        assert abs(truth["achieved_bv_tv"] - truth["parameters"]["target_bv_tv"]) < 0.005
        assert {"vois", "method"} <= set(truth["voi_truth"])
        assert truth["orientation"]["anterior_direction_lps"] == [0.0, -1.0, 0.0]
        mdct = read_volume(folder / "mdct.nrrd")
        microct = read_volume(folder / "microct.nrrd")
        binary = read_volume(folder / "truth.nrrd")
        assert mdct.array.dtype == np.int16 and microct.array.dtype == np.int16 and binary.array.dtype == np.uint8
        assert mdct.spacing_xyz_mm == pytest.approx((0.195, 0.195, 0.1))
        assert np.allclose(mdct.direction_lps, truth["mdct"]["direction_lps"])
        assert microct.same_geometry(binary)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_written_files_equal_the_in_memory_specimen(cohort):
    out, manifest, _ = cohort
    case = manifest["cases"][1]
    specimen = simulate_specimen(case["seed"], preset="tiny")
    for name, volume in (("mdct", specimen.mdct), ("microct", specimen.microct), ("truth", specimen.truth_binary)):
        written = read_volume(out / case["case_id"] / f"{name}.nrrd")
        assert written.array.tobytes() == volume.array.tobytes()
        assert written.same_geometry(volume)


def test_case_seeds_do_not_depend_on_cohort_size_and_split_is_by_specimen():
    assert [case_seed(5, i) for i in range(3)] == [case_seed(5, i) for i in range(6)][:3]
    assert len({case_seed(5, i) for i in range(50)}) == 50
    split = suggest_split(5, 75)
    assert len(split["test"]) == 25 and len(split["train"]) == 50  # the study's 50 / 25
    assert not set(split["test"]) & set(split["train"])
    assert suggest_split(5, 75) == split


def test_refuses_non_empty_folder_and_force_replaces(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidParameterError, match="not empty.*--force"):
        write_cohort(out, 1, 3, "tiny")
    write_cohort(out, 1, 3, "tiny", force=True, metrics_hook=None)
    assert (out / "case_000" / "mdct.nrrd").is_file() and (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(InvalidParameterError, match="positive integer"):
        write_cohort(tmp_path / "x", 0, 3, "tiny")


def test_cancel_leaves_no_half_written_case(tmp_path):
    class AfterFirstCase:
        def __init__(self):
            self.calls = 0

        def is_set(self):
            self.calls += 1
            return self.calls > 12

    out = tmp_path / "cancelled"
    with pytest.raises(CancelledError):
        write_cohort(out, 3, 1, "tiny", cancel=AfterFirstCase())
    assert not (out / "cohort.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]
    for case in out.iterdir():  # any case that exists is complete
        assert {p.name for p in case.iterdir()} == {"mdct.nrrd", "microct.nrrd", "truth.nrrd", "truth.json"}


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "MicroCTLikeLib", "simulate", *args], capture_output=True, text=True, encoding="utf-8", errors="replace", env=env, cwd=REPO, timeout=300
    )


def test_cli_writes_cohort_montage_and_refuses_rerun(tmp_path):
    out = tmp_path / "cli"
    done = _cli("--cases", "2", "--seed", "4", "--out", str(out), "--preset", "tiny", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "wrote 2 tiny case(s)" in done.stdout
    manifest = json.loads((out / "cohort.json").read_text())
    assert [c["case_id"] for c in manifest["cases"]] == ["case_000", "case_001"]
    png = (out / "montage.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    first_mdct = read_volume(out / "case_000" / "mdct.nrrd").array.tobytes()
    again = _cli("--cases", "1", "--seed", "4", "--out", str(out), "--preset", "tiny")
    assert again.returncode == 1
    assert "not empty" in again.stderr and "Traceback" not in again.stderr
    forced = _cli("--cases", "1", "--seed", "4", "--out", str(out), "--preset", "tiny", "--force", "--json",
                  "--montage", str(tmp_path / "m.png"))
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["cases"][0]["seed"] == manifest["cases"][0]["seed"]
    assert (tmp_path / "m.png").is_file()
    # the forced rerun rewrote case_000 from the same seed: identical array bytes
    assert read_volume(out / "case_000" / "mdct.nrrd").array.tobytes() == first_mdct


def test_cli_usage_errors(tmp_path):
    bad = _cli("--cases", "0", "--seed", "1", "--out", str(tmp_path / "z"))
    assert bad.returncode == 2 and "--cases" in bad.stderr and "Traceback" not in bad.stderr  # range checked at parse time
    usage = _cli("--cases", "1", "--seed", "1", "--out", str(tmp_path / "z"), "--preset", "huge")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
