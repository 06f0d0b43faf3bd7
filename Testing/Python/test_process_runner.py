"""The out-of-process runner the Slicer module uses: progress lines, logs, failure, cancel."""

import os
import sys
import time

import pytest

from MicroCTLikeLib.errors import CancelledError, MicroCTLikeError
from MicroCTLikeLib.mrml.process import ProcessRunner, format_progress_line, python_module_command

WORKER = r"""
import sys, time
for i in range(1, 4):
    print("PROGRESS %d/3 slice %d" % (i, i), flush=True)
print("log line", flush=True)
sys.stdout.buffer.write(b"bad byte \xff\n"); sys.stdout.flush()
sys.exit(int(sys.argv[1]))
"""


def _poll_until_done(runner, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = runner.poll()
        if code is not None:
            return code
        time.sleep(0.01)
    raise AssertionError("worker did not finish")


def test_progress_and_log_lines_are_dispatched():
    seen = []
    runner = ProcessRunner([sys.executable, "-c", WORKER, "0"], on_progress=lambda d, t, m: seen.append((d, t, m)))
    assert _poll_until_done(runner) == 0
    assert seen == [(1, 3, "slice 1"), (2, 3, "slice 2"), (3, 3, "slice 3")]
    assert runner.log_lines == ["log line", "bad byte \ufffd"]


def test_failure_raises_with_the_log_tail():
    runner = ProcessRunner([sys.executable, "-c", WORKER, "3"])
    with pytest.raises(MicroCTLikeError, match="exit code 3(.|\n)*log line"):
        runner.wait(timeout_s=20)


def test_cancel_kills_the_process_tree_promptly():
    # the child starts a grandchild that would sleep for a minute and reports its pid
    code = (
        "import subprocess, sys, time; "
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('grandchild', g.pid, flush=True); time.sleep(60)"
    )
    runner = ProcessRunner([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not runner.log_lines and time.monotonic() < deadline:
        runner.poll()
        time.sleep(0.01)
    grandchild_pid = int(runner.log_lines[0].split()[1])
    start = time.monotonic()
    runner.cancel()
    with pytest.raises(CancelledError):
        runner.wait(timeout_s=10)
    assert time.monotonic() - start < 5
    for _ in range(100):  # the grandchild dies with its process group
        try:
            os.kill(grandchild_pid, 0)
        except ProcessLookupError:
            break
        try:
            os.waitpid(grandchild_pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        raise AssertionError("grandchild still alive after cancel")


def test_progress_line_format_round_trips():
    assert format_progress_line(2, 5, "tile") == "PROGRESS 2/5 tile"
    assert python_module_command("generate", "--help")[-3:] == ["MicroCTLikeLib", "generate", "--help"]


@pytest.mark.skipif(os.name != "posix", reason="os.setsid is POSIX; on Windows the same psutil tree walk is used")
def test_cancel_also_kills_a_grandchild_that_left_the_process_group():
    """Killing the process group misses this grandchild (its own session); the psutil tree walk does not."""
    psutil = pytest.importorskip("psutil", reason="psutil is a dependency of the library (process-tree cancel)")
    code = (
        "import subprocess, sys, time; "
        "g = subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(60)']); "
        "print('grandchild', g.pid, flush=True); time.sleep(60)"
    )
    runner = ProcessRunner([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not runner.log_lines and time.monotonic() < deadline:
        runner.poll()
        time.sleep(0.01)
    grandchild = psutil.Process(int(runner.log_lines[0].split()[1]))
    time.sleep(0.2)  # let it call setsid
    assert os.getpgid(grandchild.pid) != os.getpgid(runner.process.pid)
    runner.cancel()
    with pytest.raises(CancelledError):
        runner.wait(timeout_s=10)
    try:
        grandchild.wait(timeout=5)
    except psutil.NoSuchProcess:
        pass
    assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE
    assert not psutil.pid_exists(runner.process.pid)


def test_kill_process_tree_of_a_finished_process_is_harmless():
    from MicroCTLikeLib.mrml.process import kill_process_tree

    runner = ProcessRunner([sys.executable, "-c", "pass"])
    runner.wait(timeout_s=20)
    assert kill_process_tree(runner.process.pid) == []
