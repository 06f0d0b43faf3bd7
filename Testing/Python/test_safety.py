"""Nothing lost, nothing silent: every case of issue 13 run as a user runs it (a subprocess).

Checklist (the issue's table), one test (or parameter) per row; each asserts the exit code,
the one-line message, that inputs keep their sha256 and that no stray file remains:

* output = input (also through ``same/../same/./in.nrrd``), output = a cohort's manifest,
  maps overwritten without --force;
* --batch-size 0 / -1 and other numeric options refused at parse time with the range;
* unwritable output folders and bad endings refused before any work; demo --model BAD
  refused before simulating;
* pure marrow + noise: honesty warning in text and JSON, --strict makes it an error;
* checkpoints: random bytes, truncated, unsafe, relabelled;
* headers: 1500^3 over a tiny body (NRRD and MHA), zero spacing, 0-byte file, a folder;
* kill -9 during generation's slices and during its write, and during training before and
  after its first checkpoint (deterministic: named pause points, see testing_hooks.py);
* training's checkpoint interval; --quiet on every long command; one final progress bar.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from MicroCTLikeLib.volume import Volume, write_volume

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("MICROCTLIKE_PAUSE_AT", None)
    env.update(extra)
    return env


def run(*args, timeout=300, **env):
    return subprocess.run([sys.executable, "-m", "MicroCTLikeLib", *map(str, args)], capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=timeout, env=_env(**env), cwd=ROOT)


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def files(folder) -> set:
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()}


def error_line(result, code=1) -> str:
    """The run failed with ``code`` and said so in exactly one line, without a traceback."""
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, lines
    if code == 1:
        assert lines[-1].startswith("microctlike: error: "), lines
    return errors[0]


@pytest.fixture(scope="module")
def model(tiny_funit_checkpoint):
    return tiny_funit_checkpoint


@pytest.fixture()
def mdct(tiny_cohort, tmp_path):
    folder = tmp_path / "same"
    folder.mkdir()
    path = folder / "in.nrrd"
    path.write_bytes((tiny_cohort / "case002" / "mdct.nrrd").read_bytes())
    return path


# ---------------------------------------------------------------------- inputs are never outputs
@pytest.mark.parametrize("spelling", ["{d}/in.nrrd", "{d}/../same/./in.nrrd", "link"])
def test_generate_never_replaces_its_input(mdct, model, tmp_path, spelling):
    before = sha(mdct)
    out = tmp_path / "link.nrrd" if spelling == "link" else spelling.format(d=mdct.parent)
    if spelling == "link":
        out.symlink_to(mdct)
    line = error_line(run("generate", mdct, "--out", out, "--force", "--model", model, "--device", "cpu"))
    assert "is the input" in line and "not even with --force" in line
    assert sha(mdct) == before and files(mdct.parent) == {"in.nrrd"}


def test_evaluate_never_replaces_the_cohort_manifest(tiny_cohort, model):
    manifest = tiny_cohort / "cohort.json"
    before, listing = sha(manifest), files(tiny_cohort)
    for extra in ((), ("--force",)):
        line = error_line(run("evaluate", "--data", tiny_cohort, "--model", model, "--out", manifest, *extra))
        assert "manifest of the input cohort" in line
    line = error_line(run("evaluate", "--data", tiny_cohort, "--model", model, "--out",
                          tiny_cohort / "case000" / "result.json", "--force"))
    assert "inside a case folder of the input cohort" in line
    assert sha(manifest) == before and files(tiny_cohort) == listing


def test_measure_maps_are_not_overwritten_without_force(tmp_path):
    volume = tmp_path / "bone.nrrd"
    write_volume(Volume(_sponge_grey(), (0.05,) * 3), volume)
    maps = tmp_path / "maps"
    assert run("measure", volume, "--voi", "whole", "--maps-out", maps).returncode == 0
    stamp = {name: sha(maps / name) for name in files(maps)}
    assert set(stamp) == {"whole_tb_th_mm.nrrd", "whole_tb_sp_mm.nrrd"}
    line = error_line(run("measure", volume, "--voi", "whole", "--maps-out", maps))
    assert "exists; pass --force" in line
    assert {name: sha(maps / name) for name in files(maps)} == stamp
    assert run("measure", volume, "--voi", "whole", "--maps-out", maps, "--force").returncode == 0
    line = error_line(run("measure", volume, "--voi", "whole", "--maps-out", volume.parent))
    assert "holds the input" in line


# ---------------------------------------------------------------------- numeric options at parse time
@pytest.mark.parametrize("argv, expected", [
    (("generate", "IN", "--out", "o.nrrd", "--batch-size", "0"), "--batch-size: must be an integer 1..1024, got 0"),
    (("generate", "IN", "--out", "o.nrrd", "--batch-size", "-1"), "--batch-size: must be an integer 1..1024, got -1"),
    (("train", "--out", "r", "--steps", "0"), "--steps: must be an integer 1..1000000000, got 0"),
    (("train", "--out", "r", "--crop", "40"), "16..4096 and a multiple of 16, got 40"),
    (("train", "--out", "r", "--batch-size", "0"), "--batch-size: must be an integer 1..4096"),
    (("measure", "IN", "--margin-mm", "-1"), "--margin-mm: must be a number [0, 20], got -1"),
    (("measure", "IN", "--offset-mm", "0"), "--offset-mm: must be a number (0, 100], got 0"),
    (("measure", "IN", "--threshold", "300"), "8-bit level 0-254"),
    (("simulate", "--cases", "0", "--seed", "1", "--out", "c"), "--cases: must be an integer 1..10000, got 0"),
    (("simulate", "--cases", "1", "--seed", "-3", "--out", "c"), "--seed: must be an integer"),
    (("demo", "--out", "d", "--seed", "x"), "--seed: must be an integer"),
])
def test_numeric_options_are_checked_at_parse_time(argv, expected, tmp_path):
    started = time.perf_counter()
    result = run(*argv)
    line = error_line(result, code=2)
    assert expected in line
    assert time.perf_counter() - started < 60  # no loop: `--batch-size 0` used to spin at 100 % CPU
    assert result.stdout == "" and "PROGRESS" not in result.stderr


# ---------------------------------------------------------------------- outputs checked before work
def _blocked_folder(tmp_path) -> Path:
    """An output folder nobody can create: its parent is a file (works as root, too)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    return blocker / "out"


def test_unwritable_outputs_are_refused_before_any_work(tiny_cohort, mdct, model, tmp_path):
    blocked = _blocked_folder(tmp_path)
    before = files(tmp_path)
    cases = [
        ("generate", mdct, "--out", blocked / "like.nrrd", "--model", model, "--device", "cpu"),
        ("measure", mdct, "--voi", "whole", "--maps-out", blocked),
        ("evaluate", "--data", tiny_cohort, "--model", model, "--out", blocked / "e.json"),
        ("demo", "--out", blocked, "--model", model),
        ("simulate", "--cases", "1", "--seed", "1", "--preset", "tiny", "--out", blocked),
        ("train", "--model", "funit", "--preset", "tiny", "--data", tiny_cohort, "--out", blocked, "--steps", "1"),
    ]
    if os.geteuid() != 0:  # a read-only folder stops everyone but root
        readonly = tmp_path / "readonly"
        readonly.mkdir()
        readonly.chmod(0o555)
        cases.append(("generate", mdct, "--out", readonly / "like.nrrd", "--model", model, "--device", "cpu"))
    for argv in cases:
        result = run(*argv)
        line = error_line(result)
        assert "cannot create" in line or "not writable" in line, line
        given = str(argv[argv.index("--out") + 1] if "--out" in argv else argv[argv.index("--maps-out") + 1])
        assert f" {given}: " in line, line  # the path the user gave, not only its folder
        assert "generating" not in result.stderr and "simulat" not in result.stdout
    assert files(tmp_path) == before


def test_bad_output_ending_is_refused_before_generation(mdct, model, tmp_path):
    line = error_line(run("generate", mdct, "--out", tmp_path / "x.png", "--model", model, "--device", "cpu"))
    assert "unsupported file type '.png'" in line and ".nrrd" in line
    assert files(tmp_path) == {"same/in.nrrd"}


def test_demo_with_a_bad_model_simulates_nothing(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(4096))
    out = tmp_path / "demo"
    line = error_line(run("demo", "--out", out, "--model", bad))
    assert "not a checkpoint" in line
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------- measurement honesty
def _sponge_grey(shape=(24, 48, 48), seed=3):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    bone = np.abs(field) < 0.25 * field.std()
    return (bone * 1000 + rng.normal(0, 60, shape)).astype(np.int16)


def test_pure_marrow_and_noise_warns_and_strict_refuses(tmp_path):
    rng = np.random.default_rng(0)
    noise = tmp_path / "marrow.nrrd"
    write_volume(Volume(rng.normal(0, 30, (40, 80, 80)).astype(np.int16), (0.1,) * 3), noise)
    result = run("measure", noise, "--voi", "whole", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["histogram_separability"] < 0.68 and data["quality_warnings"]
    assert any("not bimodal" in w for w in data["warnings"])
    assert "microctlike: warning: the VOI's grey-value histogram is not bimodal" in result.stderr
    line = error_line(run("measure", noise, "--voi", "whole", "--strict"))
    assert "not bimodal" in line and "--strict" in line
    # a bimodal volume (bone + noise) passes the same checks without a word
    bone = tmp_path / "bone.nrrd"
    write_volume(Volume(_sponge_grey(), (0.05,) * 3), bone)
    result = run("measure", bone, "--voi", "whole", "--json", "--strict")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["histogram_separability"] > 0.68 and data["quality_warnings"] == [] and "warning" not in result.stderr


def test_separability_matches_its_definition():
    from MicroCTLikeLib.morphometry.honesty import separability

    rng = np.random.default_rng(1)
    values = np.clip(np.round(rng.normal(128, 20, 200_000)), 0, 255).astype(int)
    histogram = np.bincount(values, minlength=256)
    eta = separability(histogram, 128)  # a Gaussian split at its mean: 2/pi
    assert eta == pytest.approx(2 / np.pi, abs=0.01)
    two = np.concatenate([np.full(800, 40), np.full(200, 200)])
    assert separability(np.bincount(two, minlength=256), 100) == pytest.approx(1.0)


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_errors_are_ours(mdct, model, tmp_path):
    import torch

    good = model.read_bytes()
    cases = {}
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(2).bytes(50_000))
    cases["random.pt"] = "not a checkpoint: the file is not a PyTorch archive"
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    cases["truncated.pt"] = "truncated or corrupt"
    (tmp_path / "empty.pt").write_bytes(b"")
    cases["empty.pt"] = "empty (0 bytes)"
    torch.save({"format": "microctlike-checkpoint", "x": _Evil()}, tmp_path / "unsafe.pt")
    cases["unsafe.pt"] = "refused it"
    payload = torch.load(model, weights_only=True)
    payload["model"]["name"] = "cyclegan"
    torch.save(payload, tmp_path / "relabelled.pt")
    cases["relabelled.pt"] = "labelled 'cyclegan' but its stored model config is 'funit'"
    messages = set()
    for name, expected in cases.items():
        line = error_line(run("generate", mdct, "--out", tmp_path / "o.nrrd", "--model", tmp_path / name,
                              "--device", "cpu", "--quiet"))
        assert expected in line and name in line and "weights_only" not in line, line
        assert line.rstrip().endswith(("train`", "another checkpoint", "step_N.pt", "sources",
                                       "training run wrote"))  # complete sentences
        messages.add(line.split(name, 1)[1])
    assert len(messages) == len(cases)  # a different text for each problem
    assert not (tmp_path / "o.nrrd").exists()


class _Evil:
    def __reduce__(self):  # would run code if loaded unsafely
        return (os.system, ("echo pwned",))


# ---------------------------------------------------------------------- headers
def _nrrd_with(tmp_path, name, replace):
    path = tmp_path / "small.nrrd"
    write_volume(Volume(_sponge_grey((6, 20, 20)), (0.2, 0.2, 0.1)), path)
    data = path.read_bytes()
    end = data.index(b"\n\n")
    header = data[:end].decode()
    for old, new in replace:
        assert old in header, header
        header = header.replace(old, new)
    target = tmp_path / name
    target.write_bytes(header.encode() + data[end:])
    return target


def test_damaged_headers_get_our_messages_without_allocating(tmp_path):
    big = _nrrd_with(tmp_path, "big.nrrd", [("sizes: 20 20 6", "sizes: 1500 1500 1500")])
    mha = tmp_path / "big.mha"
    write_volume(Volume(_sponge_grey((6, 20, 20)), (0.2, 0.2, 0.1)), mha)
    mha.write_bytes(mha.read_bytes().replace(b"DimSize = 20 20 6", b"DimSize = 1500 1500 1500"))
    zero = _nrrd_with(tmp_path, "zero.nrrd", [("(0.20000000000000001,0,0)", "(0,0,0)")])
    huge = _nrrd_with(tmp_path, "huge.nrrd", [("(0.20000000000000001,0,0)", "(1e30,0,0)")])
    inflate = tmp_path / "damaged.mha"  # compressed body overwritten: ITK only printed "Uncompress failed"
    write_volume(Volume(_sponge_grey((6, 20, 20)), (0.2, 0.2, 0.1)), inflate, compress=True)
    data = inflate.read_bytes()
    body = data.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
    inflate.write_bytes(data[:body + 2] + np.random.default_rng(8).bytes(len(data) - body - 2))
    empty = tmp_path / "empty.nrrd"
    empty.write_bytes(b"")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images here")
    expectations = {big: "claims 1500x1500x1500 voxels (6.75 GB)", mha: "claims 1500x1500x1500 voxels (6.75 GB)",
                    zero: "not three positive numbers", huge: "is outside 0.0001-100 mm, no CT voxel size",
                    inflate: "image data cannot be decoded", empty: "the file is empty (0 bytes)",
                    folder: "no DICOM series found in this folder"}
    for path, expected in expectations.items():
        result = _measure_with_peak_memory(path)
        line = error_line(result)
        assert expected in line and str(path) in line, line
        assert len([x for x in result.stderr.splitlines() if x.strip()]) == 1  # no ITK warnings before it
        assert result.peak_mb < 1500, (path, result.peak_mb)


def _measure_with_peak_memory(path):
    """``microctlike measure PATH --voi whole`` in a child whose peak memory is reported."""
    # VmHWM (this process's own peak) and not ru_maxrss: Linux carries ru_maxrss over from the parent
    # through fork + exec, so under a 2 GB pytest process every child would seem to peak at 2 GB
    code = ("import sys;sys.argv=['microctlike','measure',sys.argv[1],'--voi','whole'];"
            "from MicroCTLikeLib import cli\ntry:\n rc=cli.main()\nexcept SystemExit as e:\n rc=e.code\n"
            "hwm=[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print('PEAK_KB', hwm, file=sys.stdout);sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                            env=_env(), cwd=ROOT)
    peak = [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("PEAK_KB")]
    result.peak_mb = peak[0] / 1024 if peak else float("inf")
    return result


# ---------------------------------------------------------------------- kill -9
def _start(*args, pause):
    return subprocess.Popen([sys.executable, "-m", "MicroCTLikeLib", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(MICROCTLIKE_PAUSE_AT=pause), cwd=ROOT)


def _kill_when_paused(process, pause, timeout=240):
    """Wait for the pause line on stderr, then SIGKILL (no race: the process sleeps there)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if line.strip() == f"MICROCTLIKE PAUSED {pause}":
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            assert process.returncode == -signal.SIGKILL
            return
    process.kill()
    raise AssertionError(f"never paused at {pause}: {''.join(seen)[-2000:]}")


def test_kill_during_generation_slices_and_write(mdct, model, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "like.nrrd"
    before = sha(mdct)
    argv = ("generate", mdct, "--out", out, "--model", model, "--device", "cpu", "--quiet")
    _kill_when_paused(_start(*argv, pause="generate:slices"), "generate:slices")
    assert files(out_dir) == set()  # killed among the slices: nothing written
    _kill_when_paused(_start(*argv, pause="atomic:rename"), "atomic:rename")
    left = list(out_dir.iterdir())
    assert not out.exists() and len(left) == 1 and ".mctl-" in left[0].name  # only our temporary, by name
    assert left[0].stat().st_mode & 0o777 == 0o666 & ~_umask()  # readable like the final file, not 0600
    result = run(*argv)
    assert result.returncode == 0, result.stderr
    assert f"removed {left[0]}" in result.stderr  # the next write to that folder cleans up, and says so
    assert files(out_dir) == {"like.nrrd"} and sha(mdct) == before


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_kill_during_training_before_and_after_the_first_checkpoint(tiny_cohort, tmp_path):
    import torch

    run_dir = tmp_path / "run"
    argv = ("train", "--model", "funit", "--preset", "tiny", "--data", tiny_cohort, "--out", run_dir, "--steps", "4",
            "--seed", "3", "--set", "checkpoint_every=2", "--set", "sample_every=1000", "--quiet")
    # killed after step 1: no checkpoint yet; one clear message, and the two options do not point at each other
    _kill_when_paused(_start(*argv, pause="train:step"), "train:step")
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    line = error_line(run(*argv, "--resume"))
    assert "nothing to resume" in line and "stopped before its first checkpoint" in line and "--force" in line
    line = error_line(run(*argv))
    assert "stopped before its first checkpoint" in line and "--force" in line and "--resume" not in line
    reference = run(*argv, "--force")  # the uninterrupted run
    assert reference.returncode == 0, reference.stderr
    expected = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["inference_generator"]
    # killed right after the first checkpoint (step 2): --resume ends bit-identical to the uninterrupted run
    second = tmp_path / "run2"
    argv2 = tuple(second if a == run_dir else a for a in argv)
    _kill_when_paused(_start(*argv2, pause="train:checkpoint"), "train:checkpoint")
    assert torch.load(second / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    resumed = run(*argv2, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = torch.load(second / "checkpoints" / "last.pt", weights_only=True)
    assert got["step"] == 4
    for key, tensor in expected.items():
        assert torch.equal(tensor, got["inference_generator"][key]), key
    assert not [p for p in second.rglob("*") if ".mctl-" in p.name]


def test_checkpoint_interval_never_exceeds_the_run():
    from MicroCTLikeLib.train.config import checkpoint_interval

    assert checkpoint_interval({"steps": 2000, "checkpoint_every": None}) == 200  # the README's example
    assert checkpoint_interval({"steps": 100000, "checkpoint_every": None}) == 5000
    assert checkpoint_interval({"steps": 3, "checkpoint_every": None}) == 1
    assert checkpoint_interval({"steps": 2000, "checkpoint_every": 5000}) == 200
    assert checkpoint_interval({"steps": 2000, "checkpoint_every": 500}) == 500


# ---------------------------------------------------------------------- progress
@pytest.mark.parametrize("command", ["simulate", "train", "generate", "evaluate", "demo"])
def test_every_long_command_has_quiet(command):
    result = run(command, "--help")
    assert result.returncode == 0 and "--quiet" in result.stdout


def test_generation_draws_one_final_bar_and_says_what_it_loads(mdct, model, tmp_path):
    result = run("generate", mdct, "--out", tmp_path / "o.nrrd", "--model", model, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    n = int(result.stdout.split(": ", 1)[1].split()[0])
    frames = result.stderr.replace("\r", "\n").splitlines()
    assert frames[0].startswith("reading ") and frames[1].startswith("loading ")  # a word before the model loads
    finals = [f for f in frames if f.startswith("generating") and f"{n}/{n}" in f]
    assert len(finals) == 1, frames
    assert not [f for f in frames if f.startswith("generating") and f" 0/{n}" in f and "?" in f.split("]")[0]]


# ---------------------------------------------------------------------- fuzzing
FUZZ_CASES = 200


def test_fuzzed_files_end_cleanly_through_measure_and_generate(model, tmp_path):
    """200 seeded corruptions of NRRD/MHA/NIfTI headers and bodies (fuzz_inputs.py): each ends with
    exit 0 or 1 within 10 s and under 2 GB, an error in one line, never a traceback."""
    driver = Path(__file__).with_name("fuzz_inputs.py")
    result = subprocess.run([sys.executable, str(driver), str(tmp_path / "fuzz"), str(model), str(FUZZ_CASES), "13"],
                            capture_output=True, text=True, timeout=1500, env=_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    cases = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(cases) == FUZZ_CASES
    for case in cases:
        lines = [line for line in case["stderr"].splitlines() if line.strip()]
        assert case["code"] in (0, 1), case
        assert case["seconds"] < 10 and case["peak_mb"] < 2048, case
        assert "Traceback" not in case["stderr"], case
        if case["code"] == 1:
            assert lines and lines[-1].startswith("microctlike: error: ") and len(
                [x for x in lines if "error" in x.lower()]) == 1, case
    assert {c["command"] for c in cases} == {"measure", "generate"}
    assert sum(c["code"] == 1 for c in cases) > FUZZ_CASES // 4  # most corruptions are caught, not just tolerated
