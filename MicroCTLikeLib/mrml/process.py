"""Run long work in a child process and stream its progress (used by the Slicer module).

The Slicer GUI must not freeze while a generator runs for minutes, so the module runs
``PythonSlicer -m MicroCTLikeLib ...`` (or any command) in a child process. The child prints
lines; a line ``PROGRESS done/total [message]`` updates progress, everything else is log.
A reader thread collects the lines into a queue; the GUI polls :meth:`ProcessRunner.poll`
from a ``qt.QTimer`` (never blocking on ``readline`` in the main thread). Cancel kills the
whole process group. Output is decoded as UTF-8 with replacement, so a stray byte from a
library cannot crash the reader.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, List, Optional, Sequence

from ..errors import CancelledError, MicroCTLikeError

PROGRESS_PATTERN = re.compile(r"^PROGRESS\s+(\d+)\s*/\s*(\d+)\s*(.*)$")


def format_progress_line(done: int, total: int, message: str = "") -> str:
    """The line a worker prints to report progress (parsed by :class:`ProcessRunner`)."""
    return f"PROGRESS {int(done)}/{int(total)} {message}".rstrip()


def print_progress(done: int, total: int, message: str = "") -> None:
    """A library ``progress`` callback for worker processes: prints and flushes a PROGRESS line."""
    print(format_progress_line(done, total, message), flush=True)


class ProcessRunner:
    """One child process whose output is read by a background thread.

    Parameters
    ----------
    command : sequence of str
        The program and its arguments.
    on_progress : callable(done, total, message), optional
        Called from :meth:`poll` (so in the caller's thread) for each PROGRESS line.
    on_log : callable(str), optional
        Called from :meth:`poll` for every other line.
    env, cwd : optional
        Passed to ``subprocess.Popen``.
    """

    def __init__(self, command: Sequence[str], *, on_progress: Optional[Callable[[int, int, str], None]] = None,
                 on_log: Optional[Callable[[str], None]] = None, env=None, cwd=None):
        self.command = [str(c) for c in command]
        self.on_progress = on_progress
        self.on_log = on_log
        self.log_lines: List[str] = []
        self.cancelled = False
        self.started_s = time.monotonic()  # for the wall time a front-end reports
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        popen_kwargs = {}
        if os.name == "posix":
            popen_kwargs["start_new_session"] = True  # own process group: cancel kills its children too
        else:
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, **popen_kwargs,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            self._lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        self._lines.put(None)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the child was started."""
        return time.monotonic() - self.started_s

    def poll(self) -> Optional[int]:
        """Dispatch the lines read so far; return the exit code once the child ended and all lines are read."""
        finished_reading = False
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                finished_reading = True
                break
            self._dispatch(line)
        if finished_reading or (not self._reader.is_alive() and self._lines.empty()):
            return self.process.wait()
        return None

    def _dispatch(self, line: str) -> None:
        match = PROGRESS_PATTERN.match(line)
        if match:
            if self.on_progress is not None:
                self.on_progress(int(match.group(1)), int(match.group(2)), match.group(3).strip())
            return
        self.log_lines.append(line)
        if self.on_log is not None:
            self.on_log(line)

    def cancel(self) -> None:
        """Kill the child and everything it started; :meth:`wait` then raises CancelledError."""
        self.cancelled = True
        if self.process.poll() is not None:
            return
        kill_process_tree(self.process.pid)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kill above is SIGKILL / TerminateProcess
            self.process.kill()

    def wait(self, timeout_s: Optional[float] = None) -> int:
        """Block until the child ends (for scripts and tests); raise on failure or cancel."""
        self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        code = self.poll()
        while code is None:
            self._reader.join(timeout=1)
            code = self.poll()
        return self.check(code)

    def check(self, code: int) -> int:
        """Raise CancelledError after a cancel, MicroCTLikeError (with the last log lines) on failure."""
        if self.cancelled:
            raise CancelledError("cancelled; the worker process was stopped")
        if code != 0:
            tail = "\n".join(self.log_lines[-15:])
            raise MicroCTLikeError(f"worker failed with exit code {code}:\n{tail}")
        return code


def kill_process_tree(pid: int) -> List[int]:
    """Kill process ``pid`` and all its descendants, children first; return the pids killed.

    With psutil (asked for by the Slicer module, a dependency of the library) the tree is
    walked on every OS, which also reaches descendants that started their own session or
    process group. Without psutil: the process group on POSIX (the runner starts the child
    in a new session), ``taskkill /F /T`` on Windows. A pid that is already gone is fine.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            parent = psutil.Process(pid)
            family = parent.children(recursive=True) + [parent]
        except psutil.NoSuchProcess:
            return []
        for proc in family:  # stop first, so nobody starts a new child while we kill
            try:
                proc.suspend()
            except psutil.Error:
                pass
        for proc in family:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(family, timeout=5)
        return [proc.pid for proc in family]
    if os.name == "posix":
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return []
        return [pid]
    subprocess.call(["taskkill", "/F", "/T", "/PID", str(pid)], stdout=subprocess.DEVNULL,  # pragma: no cover
                    stderr=subprocess.DEVNULL)
    return [pid]  # pragma: no cover


def python_module_command(*arguments: str, python: Optional[str] = None) -> List[str]:
    """``[python, -m, MicroCTLikeLib, *arguments]``; inside Slicer pass the PythonSlicer path as ``python``."""
    return [python or sys.executable, "-m", "MicroCTLikeLib", *arguments]
