"""Atomic file output: write a temporary file beside the target, then rename it into place.

A killed writer never leaves a half-written volume, checkpoint, report or image at the
target path. The temporary file gets the final file's mode from the start (the ordinary
mode ``open()`` would give, or the mode of the file it replaces), so even a file left by a
``kill -9`` is readable, and its name says whose it is::

    .<target name>.mctl-<pid>-<random><suffix>

The next atomic write into that folder removes such files of ours whose writer process
is gone and that are older than the current run (a warning names each one), so killed
runs do not pile up hidden files. See :mod:`MicroCTLikeLib.outputs` for the checks made
before any work starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterator, List, Union

from .testing_hooks import pause_at

#: marker in the names of our temporary files and folders
TEMP_MARKER = ".mctl-"
_TEMP_PATTERN = re.compile(r"^\..+\.mctl-(\d+)-[A-Za-z0-9_]+")
#: when this process started writing (files of ours older than this belong to earlier runs)
_RUN_STARTED = time.time()


def default_file_mode() -> int:
    """0666 less the process umask: the mode ``open()`` gives a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_prefix(target_name: str) -> str:
    """Name prefix of our temporary file (or folder) for ``target_name`` written by this process."""
    return f".{target_name}{TEMP_MARKER}{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def remove_stale_temporaries(folder: Union[str, os.PathLike]) -> List[Path]:
    """Remove temporary files/folders of ours in ``folder`` left by killed runs.

    A temporary is stale when its writer process no longer exists and it was last modified
    before this run started. Each removal is reported with a :class:`UserWarning`; the
    removed paths are returned.
    """
    removed: List[Path] = []
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_PATTERN.match(entry.name)
        if not match:
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.st_mtime >= _RUN_STARTED or _process_alive(int(match.group(1))):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
        warnings.warn(f"removed {path}: a temporary file left by an interrupted earlier run", stacklevel=3)
    return removed


@contextlib.contextmanager
def atomic_output(path: Union[str, os.PathLike], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path``.

    ``suffix`` keeps the ending writers look at (SimpleITK picks the format from it). On
    any exception the temporary file is removed and the target is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=suffix, dir=path.parent)
    tmp = Path(name)
    try:
        try:
            mode = path.stat().st_mode & 0o7777 if path.is_file() else default_file_mode()
        except OSError:
            mode = default_file_mode()
        os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        yield tmp
        pause_at("atomic:rename")
        os.chmod(tmp, mode)  # a writer may have recreated the file
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Union[str, os.PathLike], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)
