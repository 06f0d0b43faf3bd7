"""Progress reporting and cancellation shared by every long-running function.

Convention: a long function takes two keyword arguments,

* ``progress``: ``None`` or a callable ``progress(done: int, total: int, message: str)``.
  The CLI passes a tqdm adapter (:func:`tqdm_progress`), the Slicer module passes a
  callback that updates its progress bar, a worker process prints ``PROGRESS done/total``.
* ``cancel``: ``None`` or any object with an ``is_set()`` method (``threading.Event``).
  The function checks it between units of work and raises
  :class:`~MicroCTLikeLib.errors.CancelledError`; nothing half-written is left behind.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Protocol

from .errors import CancelledError

ProgressCallback = Callable[[int, int, str], None]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


def report_progress(progress: Optional[ProgressCallback], done: int, total: int, message: str = "") -> None:
    """Call ``progress(done, total, message)`` when a callback was given."""
    if progress is not None:
        progress(int(done), int(total), message)


def raise_if_cancelled(cancel: Optional[CancelFlag], what: str = "operation") -> None:
    """Raise :class:`CancelledError` when the cancel flag is set."""
    if cancel is not None and cancel.is_set():
        raise CancelledError(f"{what} cancelled")


@contextlib.contextmanager
def tqdm_progress(description: str, unit: str = "it", disable: bool = False) -> Iterator[ProgressCallback]:
    """A progress callback drawing a tqdm bar on stderr; the bar closes on exit."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit=unit, disable=disable, dynamic_ncols=True)
    try:

        def callback(done: int, total: int, message: str = "") -> None:
            if bar.total != total:
                bar.total = total
            bar.n = done
            if message:
                bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        yield callback
    finally:
        bar.close()
