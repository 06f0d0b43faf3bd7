"""What a run leaves to read: ``log.csv``, TensorBoard events (optional), sample PNGs."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import numpy as np

from ..atomic import atomic_write_bytes


class CsvLog:
    """``RUN_DIR/log.csv``: one row per logged step, a column per loss.

    Columns grow when a model reports a new loss (the file is rewritten with the wider
    header).  On resume, rows after the checkpoint's step are dropped so the log matches
    the trajectory that continues.
    """

    def __init__(self, path, *, resume_step: Optional[int] = None) -> None:
        self.path = Path(path)
        self.fields: List[str] = ["step", "time_s"]
        self.rows: List[Dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                self.fields = list(reader.fieldnames or self.fields)
                self.rows = [row for row in reader if int(row["step"]) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.fields, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode("utf-8"))

    def append(self, step: int, time_s: float, losses: Mapping[str, float]) -> None:
        row = {"step": str(step), "time_s": f"{time_s:.3f}"}
        row.update({key: repr(float(value)) for key, value in losses.items()})  # repr: exact floats
        self.rows.append(row)
        new = [key for key in losses if key not in self.fields]
        if new:
            self.fields += sorted(new)
            self._rewrite()
            return
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=self.fields, restval="", lineterminator="\n").writerow(row)


def read_log(path) -> List[Dict[str, float]]:
    """Rows of a ``log.csv`` as floats (empty cells left out)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


class TensorBoard:
    """Scalars to TensorBoard when the ``tensorboard`` package is importable; silent otherwise."""

    def __init__(self, log_dir, *, enabled: bool = True, say=print) -> None:
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            say("TensorBoard logging is off: the tensorboard package is not installed (pip install tensorboard); log.csv has the losses")
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"loss/{key}", float(value), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def sample_grid(mdct: np.ndarray, translated: np.ndarray, microct: np.ndarray) -> np.ndarray:
    """uint8 image with rows ``MDCT | translation | micro-CT``, inputs (B,1,H,W) in [-1, 1]."""
    rows = []
    for a, b, c in zip(mdct[:, 0], translated[:, 0], microct[:, 0]):
        gap = np.zeros((a.shape[0], 2), dtype=np.float32) - 1.0
        rows.append(np.concatenate([a, gap, b, gap, c], axis=1))
        rows.append(np.zeros((2, rows[-1].shape[1]), dtype=np.float32) - 1.0)
    grid = np.concatenate(rows[:-1], axis=0)
    return np.round((np.clip(grid, -1, 1) + 1) * 127.5).astype(np.uint8)


def write_sample_png(path, mdct: np.ndarray, translated: np.ndarray, microct: np.ndarray) -> Path:
    """Write :func:`sample_grid` as a greyscale PNG (atomically)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(sample_grid(mdct, translated, microct)).save(buffer, format="PNG")
    return atomic_write_bytes(Path(path), buffer.getvalue())
