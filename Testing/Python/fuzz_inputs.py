"""Fuzz driver: seeded corruptions of NRRD / MHA / NIfTI files through ``measure`` and ``generate``.

Run as ``python fuzz_inputs.py WORKDIR CHECKPOINT N SEED``: imports the command line once
(torch, SimpleITK warm), then forks one child per case, so a case costs the command, not
the imports. Each child gets an address-space ceiling (so a runaway allocation cannot hurt
the machine), its stdout/stderr go to files, and the parent kills it after the time limit.
Prints one JSON line per case: file, command, exit code, seconds, peak memory (MB),
stderr; the test asserts on them.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import resource
import signal
import struct
import sys
import time
import traceback
from pathlib import Path

import numpy as np

TIME_LIMIT_S = 10.0
MEMORY_LIMIT_MB = 2048


def base_files(folder: Path) -> list:
    from MicroCTLikeLib.volume import Volume, write_volume

    rng = np.random.default_rng(0)
    grey = (rng.normal(0, 40, (8, 24, 24)) + 1000 * (rng.random((8, 24, 24)) < 0.2)).astype(np.int16)
    volume = Volume(grey, (0.195, 0.195, 0.1), (1.0, -2.0, 3.0))
    paths = []
    for name, compress in (("gz.nrrd", True), ("raw.nrrd", False), ("z.mha", True), ("raw.mha", False),
                           ("a.nii", False), ("a.nii.gz", True)):
        path = folder / f"base_{name}"
        write_volume(volume, path, compress=compress)
        paths.append(path)
    return paths


def _text_header_end(data: bytes, name: str) -> int:
    if name.endswith(".nrrd"):
        end = data.find(b"\n\n")
        return end + 2 if end >= 0 else len(data)
    if name.endswith(".mha"):
        end = data.find(b"ElementDataFile")
        return data.find(b"\n", end) + 1 if end >= 0 else len(data)
    return 352


_NUMBERS = [b"0", b"-1", b"1", b"1500", b"99999999", b"nan", b"inf", b"2147483648", b"0.0", b"-0.5", b"", b"x"]


def corrupt(data: bytes, name: str, rng: np.random.Generator) -> bytes:
    """One seeded corruption of the header or the body."""
    gz_nifti = name.endswith(".nii.gz")
    if gz_nifti:
        data = gzip.decompress(data)
    split = _text_header_end(data, name)
    header, body = bytearray(data[:split]), bytearray(data[split:])
    kind = rng.integers(0, 8)
    if name.endswith((".nrrd", ".mha")) and kind < 4:  # a number, a line or a word of the text header
        lines = bytes(header).split(b"\n")
        i = int(rng.integers(0, max(1, len(lines) - 1)))
        if kind == 0:
            numbers = list(re.finditer(rb"-?\d+(\.\d+)?(e-?\d+)?", lines[i]))
            if numbers:
                m = numbers[int(rng.integers(0, len(numbers)))]
                lines[i] = lines[i][:m.start()] + _NUMBERS[int(rng.integers(0, len(_NUMBERS)))] + lines[i][m.end():]
        elif kind == 1:
            del lines[i]
        elif kind == 2:
            lines[i] = lines[i][: int(rng.integers(0, len(lines[i]) + 1))]
        else:
            words = [b"type: float", b"encoding: raw", b"encoding: gzip", b"ElementType = MET_DOUBLE",
                     b"CompressedData = False", b"dimension: 2", b"NDims = 4", b"sizes: 24 24", b"data file: nope.raw",
                     b"ElementDataFile = nope.raw", b"ElementNumberOfChannels = 3", b"spacings: 0 0 0"]
            lines.insert(i + 1, words[int(rng.integers(0, len(words)))])
        header = bytearray(b"\n".join(lines))
    elif not name.endswith((".nrrd", ".mha")) and kind < 4:  # NIfTI: a field of the binary header
        offset, fmt = [(40, "h"), (42, "h"), (44, "h"), (46, "h"), (70, "h"), (72, "h"), (80, "f"), (84, "f"),
                       (88, "f"), (108, "f"), (0, "i")][int(rng.integers(0, 11))]
        value = [0, -1, 1, 1500, 32767, 7, 9][int(rng.integers(0, 7))]
        if fmt == "f":
            value = float([0.0, -1.0, float("nan"), 1e30, 352.0, 1e-30][int(rng.integers(0, 6))])
        header[offset:offset + struct.calcsize(fmt)] = struct.pack("<" + fmt, value)
    elif kind == 4:  # flip bytes of the body
        for _ in range(int(rng.integers(1, 40))):
            if body:
                body[int(rng.integers(0, len(body)))] = int(rng.integers(0, 256))
    elif kind == 5:  # truncate
        body = body[: int(rng.integers(0, max(1, len(body))))]
    elif kind == 6:  # junk appended / body replaced by random bytes
        body = bytearray(rng.bytes(int(rng.integers(0, 3 * len(body) + 1)))) if rng.random() < 0.5 else body + rng.bytes(100)
    else:  # flip bytes of the header
        for _ in range(int(rng.integers(1, 6))):
            header[int(rng.integers(0, len(header)))] = int(rng.integers(0, 256))
    out = bytes(header + body)
    return gzip.compress(out) if gz_nifti and rng.random() < 0.8 else out


def run_case(argv, out_dir: Path):
    """Fork; the child runs the CLI under the memory ceiling; returns (code, seconds, peak MB, stderr)."""
    from MicroCTLikeLib import cli

    err = out_dir / "stderr.txt"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            limit = MEMORY_LIMIT_MB * 2**20 + _address_space()
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            try:
                code = cli.main(argv)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:  # noqa: BLE001 - reported as a failure by the parent
            traceback.print_exc()
            code = 3
        finally:
            sys.stderr.flush()
            os._exit(code)
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > TIME_LIMIT_S:
            os.kill(pid, signal.SIGKILL)
            done, status, usage = os.wait4(pid, 0)
            return "timeout", time.monotonic() - started, usage.ru_maxrss / 1024, err.read_text(errors="replace")
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    return code, time.monotonic() - started, usage.ru_maxrss / 1024, err.read_text(errors="replace")


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def main(workdir: str, checkpoint: str, n_cases: int, seed: int) -> int:
    # one thread, fixed before torch starts its pool: a forked child must not wait for the parent's threads
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[key] = "1"
    # ITK's default thread pool keeps worker threads that a forked child does not inherit: the
    # child's first multi-threaded filter would wait for them forever. The platform threader
    # starts its threads per call, so a child runs its filters as a fresh process would.
    os.environ["ITK_GLOBAL_DEFAULT_THREADER"] = "Platform"
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultThreader("PLATFORM")
    import torch  # noqa: F401

    from MicroCTLikeLib import cli  # noqa: F401  (warm imports before the forks)
    from MicroCTLikeLib import inference, measurement  # noqa: F401
    from MicroCTLikeLib.train import checkpoint as _checkpoint  # noqa: F401

    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    bases = base_files(folder)
    rng = np.random.default_rng(seed)
    for index in range(n_cases):
        base = bases[index % len(bases)]
        suffix = base.name.split("_", 1)[1]
        path = folder / f"case{index:03d}_{suffix}"
        path.write_bytes(corrupt(base.read_bytes(), base.name, rng))
        if index % 2 == 0:
            argv = ["measure", str(path), "--voi", "whole"]
        else:
            argv = ["generate", str(path), "--out", str(folder / f"like{index:03d}.nrrd"), "--model", checkpoint,
                    "--device", "cpu", "--quiet"]
        code, seconds, peak_mb, stderr = run_case(argv, folder)
        print(json.dumps({"file": path.name, "command": argv[0], "code": code, "seconds": round(seconds, 2),
                          "peak_mb": round(peak_mb), "stderr": stderr[-3000:]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
