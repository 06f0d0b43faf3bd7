"""The README's command block, run as printed on a fresh folder (with the small settings below).

Substitutions, so that it runs in minutes: ``simulate --cases 4`` -> ``--cases 2`` (one test
specimen), ``train --preset small --steps 2000`` -> ``--preset tiny --steps 2``; ``demo`` is
left out (``make demo`` and test_demo_and_report.py run it). Every other word is the README's.
The test also checks that nothing lands outside the git-ignored out/, runs/ and demo_out/.
About 3 minutes on 2 cores (two simulated specimens of the small preset); part of ``make test``.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBSTITUTIONS = [("--cases 4", "--cases 2"), ("--preset small --data", "--preset tiny --data"), ("--steps 2000", "--steps 2")]


def readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("microctlike "):
            commands.append(line)
    return commands


def test_readme_block_is_what_this_test_runs():
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == ["simulate", "measure", "measure", "train", "info", "generate",
                                                "evaluate", "evaluate", "demo"]
    for old, _ in SUBSTITUTIONS:
        assert any(old in c for c in commands), old
    ignored = subprocess.run(["git", "check-ignore", "out/x", "runs/x", "demo_out/x"], cwd=ROOT, capture_output=True,
                             text=True)
    assert ignored.stdout.split() == ["out/x", "runs/x", "demo_out/x"]


def test_readme_commands_run_as_printed(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for command in readme_commands():
        if command.split()[1] == "demo":
            continue
        for old, new in SUBSTITUTIONS:
            command = command.replace(old, new)
        argv = shlex.split(command)[1:]
        result = subprocess.run([sys.executable, "-m", "MicroCTLikeLib", *argv, *(["--quiet"] if argv[0] in
                                ("simulate", "train", "generate", "evaluate") else [])],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, (command, result.stderr[-3000:])
    stray = [p for p in tmp_path.iterdir() if not re.fullmatch(r"out|runs|demo_out", p.name)]
    assert not stray, stray
