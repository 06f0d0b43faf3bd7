"""The one output policy of every command: checked before any work starts.

Every command that writes files asks this module first, so a user learns about a bad
``--out`` in the first second, not after an hour of generation:

* paths are compared after :func:`os.path.realpath`, so ``same/../same/./in.nrrd`` and a
  symbolic link are the file they point at;
* an output that *is* an input, or lies inside what an input cohort's manifest names
  (``cohort.json`` and its case folders), or is a folder holding an input, is refused,
  **also with --force**: ``--force`` only replaces earlier outputs;
* an existing output is refused unless ``force``;
* the file type (ending) is checked against what the writer supports;
* the folder must be writable (a real probe file, so read-only mounts and root are judged
  correctly) or creatable.

All refusals are :class:`~MicroCTLikeLib.errors.OutputError` with one line naming the
path and what to do; the command line prints them as ``microctlike: error: ...``.
:func:`write_json_atomic` is the JSON writer every report and manifest goes through.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

from .atomic import atomic_output
from .errors import OutputError

PathLike = Union[str, os.PathLike]

#: the manifest that makes a folder a cohort
COHORT_MANIFEST = "cohort.json"


def resolved(path: PathLike) -> Path:
    """The absolute path with ``..``, ``.`` and symbolic links resolved (the file it names)."""
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def protected_paths(inputs: Iterable[Optional[PathLike]]) -> List[Tuple[Path, str, bool]]:
    """(resolved path, what it is, whether everything inside it is protected) of each input.

    A file input protects that file. A cohort folder (it holds ``cohort.json``) protects
    the manifest and the case folders it names (or, for a manifest without case entries,
    every sub-folder); other files beside them (e.g. an evaluation written there) are not
    inputs. Any other folder input (a DICOM series) protects its whole content.
    """
    protected: List[Tuple[Path, str, bool]] = []
    for item in inputs:
        if item is None:
            continue
        path = resolved(item)
        if path.is_dir() and (path / COHORT_MANIFEST).is_file():
            protected.append((path / COHORT_MANIFEST, f"the manifest of the input cohort {item}", False))
            for case in _cohort_case_dirs(path):
                protected.append((case, f"a case folder of the input cohort {item}", True))
            protected.append((path, f"the input cohort folder {item}", False))
        elif path.is_dir():
            protected.append((path, f"the input folder {item}", True))
        else:
            protected.append((path, f"the input {item}", False))
    return protected


def _cohort_case_dirs(cohort: Path) -> List[Path]:
    try:
        manifest = json.loads((cohort / COHORT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    names = []
    for case in manifest.get("cases", []) if isinstance(manifest, dict) else []:
        if isinstance(case, dict):
            name = case.get("case_id") or case.get("id")
            if isinstance(name, str) and name:
                names.append(name)
    if not names:
        names = [p.name for p in cohort.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [resolved(cohort / name) for name in names]


def _refuse_inputs(out: Path, shown: PathLike, protected, *, is_dir: bool) -> None:
    for path, what, subtree in protected:
        if out == path:
            raise OutputError(f"{shown}: is {what}; an output never replaces an input (not even with --force); "
                              "choose another output path")
        if subtree and _inside(out, path):
            raise OutputError(f"{shown}: lies inside {what}; an output never replaces an input (not even with "
                              "--force); choose another output path")
        if is_dir and _inside(path, out):
            raise OutputError(f"{shown}: this output folder holds {what}; choose another output folder")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".nii.gz",):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def check_writable_folder(folder: PathLike, *, shown: Optional[PathLike] = None, role: str = "this folder") -> Path:
    """Refuse a folder that cannot be written (or created); return its resolved path.

    ``shown`` starts the message (the option and the path the user gave); ``role`` names
    the folder in it ("this folder", or "its folder DIR" for an output file's folder).

    Probes with a real temporary file in the folder (or in its nearest existing ancestor
    when it does not exist yet), so permissions, read-only mounts and full quotas all
    show up here, before any work.
    """
    folder_path = resolved(folder)
    shown = folder if shown is None else shown
    probe_in = folder_path
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise OutputError(f"{shown}: cannot create {role} ({probe_in} is a file, not a folder); "
                          "choose another output path")
    try:
        fd, name = tempfile.mkstemp(prefix=".microctlike-write-test-", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        where = role if probe_in == folder_path else f"{role} cannot be created in {probe_in}, which"
        raise OutputError(f"{shown}: {where} is not writable ({reason}); choose another output path or fix its "
                          "permissions") from None
    return folder_path


def check_output_file(path: PathLike, *, force: bool = False, inputs: Sequence[Optional[PathLike]] = (),
                      suffixes: Optional[Sequence[str]] = None, option: str = "--out") -> Path:
    """Check one output file before any work; return it as given (a :class:`Path`).

    Parameters
    ----------
    path : path
        The output file.
    force : bool
        Replace an existing output (never an input).
    inputs : paths
        The command's inputs (files, cohort folders, DICOM folders); see :func:`protected_paths`.
    suffixes : sequence of str, optional
        Allowed endings (``".nrrd"``, ``".nii.gz"``, ...), lower case.
    option : str
        The option named in messages.
    """
    given = Path(path)
    out = resolved(path)
    if suffixes is not None and _suffix(out) not in suffixes:
        raise OutputError(f"{option} {given}: unsupported file type {_suffix(out) or '(no ending)'!r}; "
                          f"use one of {', '.join(suffixes)}")
    _refuse_inputs(out, f"{option} {given}", protected_paths(inputs), is_dir=False)
    if out.is_dir():
        raise OutputError(f"{option} {given}: is a folder; give a file name")
    if out.exists() and not force:
        raise OutputError(f"{option} {given}: exists; pass --force to replace it, or choose another name")
    # the message names the file the user gave, then its folder
    check_writable_folder(out.parent, shown=f"{option} {given}", role=f"its folder {given.parent}")
    return given


def check_output_dir(out_dir: PathLike, *, force: bool, inputs: Sequence[Optional[PathLike]] = (),
                     option: str = "--out") -> Path:
    """Refuse a file, a non-empty folder unless ``force``, an input, or an unwritable folder.

    Returns the path as given (a :class:`Path`).
    """
    out = Path(out_dir)
    real = resolved(out)
    _refuse_inputs(real, f"{option} {out}", protected_paths(inputs), is_dir=True)
    if real.exists() and not real.is_dir():
        raise OutputError(f"{option} {out}: exists and is not a folder")
    if real.is_dir() and any(real.iterdir()) and not force:
        raise OutputError(
            f"{option} {out}: folder is not empty; choose a new folder, or replace what an earlier run wrote there "
            "with --force (Python: force=True)"
        )
    check_writable_folder(real, shown=f"{option} {out}")
    return out


def write_json_atomic(data: Any, path: PathLike) -> Path:
    """Write JSON (sorted keys, 2-space indent, no NaN) via a temporary file and a rename."""
    path = Path(path)
    with atomic_output(path, suffix=".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, allow_nan=False)
            handle.write("\n")
    return path


__all__ = ["resolved", "protected_paths", "check_writable_folder", "check_output_file", "check_output_dir",
           "write_json_atomic", "COHORT_MANIFEST"]
