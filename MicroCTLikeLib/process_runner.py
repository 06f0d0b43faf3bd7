"""Former home of the child-process runner, kept so existing imports work: see :mod:`MicroCTLikeLib.mrml.process`."""

from .mrml.process import (
    PROGRESS_PATTERN,
    ProcessRunner,
    format_progress_line,
    print_progress,
    python_module_command,
)

__all__ = ["PROGRESS_PATTERN", "ProcessRunner", "format_progress_line", "print_progress", "python_module_command"]
