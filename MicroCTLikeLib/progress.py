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
    """A progress callback drawing one tqdm bar on stderr; the bar closes on exit.

    The bar appears at the first call (not while a model loads or a volume is read), so its
    rate is measured on the same clock as the work it counts; a new ``total`` starts the
    bar afresh (one bar per task). Repeated calls with the same numbers draw nothing, and
    tqdm's own refresh interval applies. The bar closes when its task completes (done ==
    total), so the final frame is drawn once, with the task's own elapsed time, and not again
    when the command ends or tqdm's monitor thread wakes.
    """
    from tqdm import tqdm

    state = {"bar": None, "finished": None}
    try:

        def callback(done: int, total: int, message: str = "") -> None:
            if state["finished"] == total and done >= total:
                return  # the task's final bar is drawn already: later reports of it draw nothing
            bar = state["bar"]
            if bar is None:
                # delay > 0: no empty "0/N ?/s" frame at creation; the first frame shows real progress
                bar = state["bar"] = tqdm(desc=description, unit=unit, total=total, disable=disable,
                                          dynamic_ncols=True, delay=0.01)
                state["finished"] = None
            elif bar.total != total:
                bar.reset(total=total)
            if message and message != getattr(bar, "_microctlike_message", None):
                bar._microctlike_message = message
                bar.set_postfix_str(message, refresh=False)
            if total and done >= total:
                # done: close now, and let close draw the one final frame (overall rate over the
                # task's own time); an update() here would draw a second final frame with tqdm's
                # smoothed rate, and a close at the end of the command a third, with a later time
                bar.n = done
                _close(bar)
                state["bar"], state["finished"] = None, total
            elif done != bar.n:
                bar.update(done - bar.n)

        yield callback
    finally:
        if state["bar"] is not None:
            _close(state["bar"])


def _close(bar) -> None:
    """Close ``bar``: tqdm's close draws the final frame (overall rate) once."""
    if not bar.disable and bar.last_print_t < bar.start_t + bar.delay:
        bar.last_print_t = bar.start_t + bar.delay  # work shorter than the delay: close would skip the frame
    bar.close()
