#!/usr/bin/env python3
"""Headless training entry point: the same as ``microctlike train``.

Runs as

* ``python train.py --model funit --data COHORT --out RUN [...]``
* ``torchrun --nproc_per_node N train.py ...`` (DistributedDataParallel)
* ``Slicer --no-main-window --python-script train.py -- --model funit --data COHORT --out RUN``

Inside Slicer, ``sys.argv`` holds this script and the arguments Slicer did not consume
(a leading ``--`` is dropped); Slicer does not exit on its own, so ``sys.exit`` is called
explicitly.  Nothing happens at import time; no GUI is used.
"""

import os
import sys


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv`` after the script) and train; returns the exit code."""
    import argparse

    # Slicer's script runner may not set __file__; argv[0] is the script then
    here = os.path.dirname(os.path.abspath(globals().get("__file__") or sys.argv[0]))
    if here not in sys.path:  # run from a checkout without installing
        sys.path.insert(0, here)
    from MicroCTLikeLib.cli import run_reporting_errors
    from MicroCTLikeLib.commands import train as command

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="train.py", description=command.HELP)
    command.add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as error:  # argparse: --help (0) or usage error (2)
        return int(error.code or 0)
    return run_reporting_errors(command.run, args, prog="train.py")


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # anything unexpected: print it and still exit (Slicer would stay open)
        import traceback

        traceback.print_exc()
        code = 1
    sys.exit(code)
