"""The ``microctlike`` command line: a thin ``main()`` over the Python API.

Each subcommand lives in ``MicroCTLikeLib/commands/<name>.py`` and defines

* ``HELP``: one line for ``microctlike --help``;
* ``add_arguments(parser)``: its options (stdlib only at import time: no torch, no numpy);
* ``run(args) -> int``: does the work through the library and returns the exit status.

Errors deriving from :class:`~MicroCTLikeLib.errors.MicroCTLikeError` are printed as
``microctlike: error: ...`` without a traceback (exit 1); usage errors exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import List, Optional

from . import __version__
from .errors import MicroCTLikeError

#: subcommand name -> module; the one registry of subcommands.
COMMANDS = {
    "simulate": "MicroCTLikeLib.commands.simulate",
    "measure": "MicroCTLikeLib.commands.measure",
    "train": "MicroCTLikeLib.commands.train",
    "info": "MicroCTLikeLib.commands.info",
    "generate": "MicroCTLikeLib.commands.generate",
    "evaluate": "MicroCTLikeLib.commands.evaluate",
    "demo": "MicroCTLikeLib.commands.demo",
    "web": "MicroCTLikeLib.commands.web",
}


def _available_commands():
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # not written yet: leave it out of the menu
                continue
            raise
        yield name, module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microctlike",
        description="Micro-CT-like volumes from clinical CT and BoneJ-exact trabecular morphometry.",
    )
    parser.add_argument("--version", action="version", version=f"microctlike {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _available_commands():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def run_reporting_errors(run, args, *, prog: str = "microctlike") -> int:
    """``run(args)`` as an exit status: our errors print ``prog: error: ...`` (1), Ctrl-C 130.

    File-system and memory errors the checks could not foresee (disk full, a folder removed
    while writing) are printed the same way, as one line naming the file; Python warnings
    are printed as ``prog: warning: ...`` without their source line.
    """

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return int(run(args) or 0)
        except MicroCTLikeError as error:
            print(f"{prog}: error: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            print(f"{prog}: error: {where}{error.strerror or error}; nothing was written under the target name",
                  file=sys.stderr)
            return 1
        except MemoryError:
            print(f"{prog}: error: out of memory; use a smaller region or volume, or a machine with more memory",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_reporting_errors(args._run, args)


if __name__ == "__main__":  # python -m MicroCTLikeLib.cli
    sys.exit(main())
