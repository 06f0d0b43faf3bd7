"""A named pause point for tests that kill a process at a chosen moment (``kill -9``).

``pause_at(name)`` does nothing unless the environment variable ``MICROCTLIKE_PAUSE_AT``
equals ``name``; then it prints ``MICROCTLIKE PAUSED <name>`` on stderr and sleeps until the
process is killed. A test starts the command with the variable set, waits for that line and
sends SIGKILL, so "killed during the write" is a certainty, not a race won by a sleep.

Points: ``generate:slices`` (after the first batch of slices, more to come),
``generate:write`` (all slices done, before the output is written), ``atomic:rename``
(an output's temporary file is complete, before it is renamed into place),
``train:step`` (after the first step of a run, before any checkpoint) and
``train:checkpoint`` (right after a checkpoint was saved).
"""

from __future__ import annotations

import os
import sys
import time

ENV = "MICROCTLIKE_PAUSE_AT"


def pause_at(name: str) -> None:
    """Sleep forever at ``name`` when ``$MICROCTLIKE_PAUSE_AT`` asks for it (tests only)."""
    if os.environ.get(ENV) != name:
        return
    print(f"MICROCTLIKE PAUSED {name}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
