"""argparse types that check a numeric option's range at parse time (stdlib only).

A value out of range is a usage error (exit 2) whose message gives the allowed range::

    microctlike generate: error: argument --batch-size: must be an integer in 1..1024, got 0
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional


def int_in(low: int, high: Optional[int] = None, *, multiple_of: Optional[int] = None) -> Callable[[str], int]:
    """An integer in ``low..high`` (``high=None``: no upper bound), optionally a multiple of a number."""
    span = f"{low}..{high}" if high is not None else f">= {low}"
    extra = f" and a multiple of {multiple_of}" if multiple_of else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {span}{extra}, got {text!r}") from None
        if value < low or (high is not None and value > high) or (multiple_of and value % multiple_of):
            raise argparse.ArgumentTypeError(f"must be an integer {span}{extra}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(low: float, high: Optional[float] = None, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    span = f"{'(' if low_open else '['}{low:g}, {high:g}]" if high is not None else (f"> {low:g}" if low_open else f">= {low:g}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


#: ranges shared by several commands
BATCH_SIZE = int_in(1, 1024)
SEED = int_in(0, 2**63 - 1)


def views_option(text: str):
    """Slice orientations for generation: ``axial``, ``coronal``, ``sagittal`` joined by ``+``, or ``all``."""
    from ..errors import InvalidParameterError
    from ..inference import parse_views

    try:
        return parse_views(text)
    except InvalidParameterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
