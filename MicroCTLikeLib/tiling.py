"""Tiled generator passes that give the whole-slice result with bounded memory.

Instance normalisation and AdaIN normalise each feature map with statistics over the whole
image. A naive tiled pass normalises each tile with its own statistics, so tiles disagree
with each other and with the whole-slice pass, and a reader sees seams. Here every
normalisation uses the **statistics of the whole slice**, gathered tile by tile:

1. For normalisation call ``l = 0, 1, ...`` (in execution order) run every tile through the
   generator, with calls ``< l`` using the whole-slice statistics found so far, and
   accumulate the sum and sum of squares of call ``l``'s input over each tile's *core*
   (the tiles' cores partition the slice); the pass stops right there.
2. A last pass with all statistics frozen writes each tile's core into the output.

With a halo that covers the generator's receptive field the result equals the whole-slice
pass up to float rounding; with a smaller halo the difference is bounded and measured in
the tests. The cost is about (number of normalisations / 2 + 1) tile passes, so the engine
uses tiles only when a whole slice does not fit (CUDA out-of-memory, or asked for).

It intercepts ``torch.nn.functional.instance_norm``, which ``nn.InstanceNorm2d`` and our
AdaIN both call, so it works for every generator of :mod:`MicroCTLikeLib.models`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidParameterError
from .progress import raise_if_cancelled

_PATCH_LOCK = threading.Lock()


class _StopForward(Exception):
    """Raised inside the generator to end a statistics pass early."""


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: the window fed to the generator and its core (written to the output).

    All coordinates are in pixels of the padded slice, ``[start, stop)``.
    """

    window_y: Tuple[int, int]
    window_x: Tuple[int, int]
    core_y: Tuple[int, int]
    core_x: Tuple[int, int]


def plan_tiles(height: int, width: int, *, core_px: int, halo_px: int, multiple: int) -> List[Tile]:
    """Cover a (height, width) slice with equal-size windows whose cores partition it.

    ``height``, ``width``, ``core_px`` and ``halo_px`` must be multiples of ``multiple``
    (the generator's total stride) so cores map to whole pixels at every resolution.
    """
    for name, value in (("height", height), ("width", width), ("core_px", core_px), ("halo_px", halo_px)):
        if value % multiple:
            raise InvalidParameterError(f"{name}={value} is not a multiple of {multiple}")
    if core_px <= 0:
        raise InvalidParameterError("core_px must be positive")
    window_h = min(height, core_px + 2 * halo_px)
    window_w = min(width, core_px + 2 * halo_px)
    tiles = []
    for y0 in range(0, height, core_px):
        y1 = min(y0 + core_px, height)
        wy0 = int(np.clip(y0 - halo_px, 0, height - window_h))
        for x0 in range(0, width, core_px):
            x1 = min(x0 + core_px, width)
            wx0 = int(np.clip(x0 - halo_px, 0, width - window_w))
            tiles.append(Tile((wy0, wy0 + window_h), (wx0, wx0 + window_w), (y0, y1), (x0, x1)))
    return tiles


class _InstanceNormInterceptor:
    """Replaces ``F.instance_norm`` while a tiled pass runs (see module docstring)."""

    def __init__(self, original):
        self.original = original
        self.frozen: List[Tuple[torch.Tensor, torch.Tensor]] = []  # (mean, var) per call, float64 (C,)
        self.collect = False
        self.cores: List[Tuple[Tuple[int, int], Tuple[int, int], Tuple[int, int]]] = []  # per batch item
        self.sum: Optional[torch.Tensor] = None
        self.sum_sq: Optional[torch.Tensor] = None
        self.count = 0
        self.calls = 0

    def __call__(self, input, running_mean=None, running_var=None, weight=None, bias=None,
                 use_input_stats=True, momentum=0.1, eps=1e-5):
        index = self.calls
        self.calls += 1
        if index < len(self.frozen):
            mean, var = self.frozen[index]
            mean = mean.to(input.device, input.dtype)[None, :, None, None]
            inv_std = torch.rsqrt(var + eps).to(input.device, input.dtype)[None, :, None, None]
            out = (input - mean) * inv_std
            if weight is not None:
                out = out * weight[None, :, None, None]
            if bias is not None:
                out = out + bias[None, :, None, None]
            return out
        if not self.collect:
            raise RuntimeError("tiled pass: the generator made more normalisation calls than were measured")
        height, width = input.shape[-2:]
        values = input.detach().double()
        total = torch.zeros(input.shape[1], dtype=torch.float64, device=input.device)
        total_sq = torch.zeros_like(total)
        count = 0
        for item, (window_hw, core_y, core_x) in enumerate(self.cores):
            scale_y = window_hw[0] // height
            scale_x = window_hw[1] // width
            core = values[item, :, core_y[0] // scale_y:core_y[1] // scale_y, core_x[0] // scale_x:core_x[1] // scale_x]
            total += core.sum(dim=(1, 2))
            total_sq += (core * core).sum(dim=(1, 2))
            count += core.shape[1] * core.shape[2]
        self.sum = total if self.sum is None else self.sum + total
        self.sum_sq = total_sq if self.sum_sq is None else self.sum_sq + total_sq
        self.count += count
        raise _StopForward

    def finish_layer(self) -> None:
        mean = self.sum / self.count
        var = torch.clamp(self.sum_sq / self.count - mean * mean, min=0.0)
        self.frozen.append((mean.cpu(), var.cpu()))
        self.sum = self.sum_sq = None
        self.count = 0


@contextlib.contextmanager
def _intercept_instance_norm() -> Iterator[_InstanceNormInterceptor]:
    with _PATCH_LOCK:
        original = F.instance_norm
        interceptor = _InstanceNormInterceptor(original)
        F.instance_norm = interceptor
        try:
            yield interceptor
        finally:
            F.instance_norm = original


def _windows(image: torch.Tensor, tiles: List[Tile]) -> torch.Tensor:
    return torch.cat([image[:, :, t.window_y[0]:t.window_y[1], t.window_x[0]:t.window_x[1]] for t in tiles])


def translate_tiled(generator, image: torch.Tensor, *, core_px: int, halo_px: int, multiple: int,
                    tiles_per_batch: int = 4, cancel=None) -> torch.Tensor:
    """Translate one slice (1, 1, H, W) in tiles with whole-slice normalisation statistics.

    ``H`` and ``W`` must be multiples of ``multiple``. Returns (1, 1, H, W) on the image's device.
    """
    if image.shape[0] != 1 or image.dim() != 4:
        raise InvalidParameterError(f"translate_tiled takes one slice (1, C, H, W), got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    tiles = plan_tiles(height, width, core_px=core_px, halo_px=halo_px, multiple=multiple)
    batches = [tiles[i:i + tiles_per_batch] for i in range(0, len(tiles), tiles_per_batch)]

    def cores_of(batch):
        return [((t.window_y[1] - t.window_y[0], t.window_x[1] - t.window_x[0]),
                 (t.core_y[0] - t.window_y[0], t.core_y[1] - t.window_y[0]),
                 (t.core_x[0] - t.window_x[0], t.core_x[1] - t.window_x[0])) for t in batch]

    with torch.no_grad(), _intercept_instance_norm() as norm:
        while True:  # one statistics pass per normalisation call, until a pass completes
            norm.collect = True
            completed = False
            for batch in batches:
                raise_if_cancelled(cancel, "generation")
                norm.calls = 0
                norm.cores = cores_of(batch)
                try:
                    generator(_windows(image, batch))
                    completed = True
                except _StopForward:
                    pass
            if completed:  # no normalisation left to measure: every call is frozen
                break
            norm.finish_layer()
        norm.collect = False
        output = torch.empty((1, 1, height, width), dtype=image.dtype, device=image.device)
        for batch in batches:
            raise_if_cancelled(cancel, "generation")
            norm.calls = 0
            result = generator(_windows(image, batch))
            for item, t in enumerate(batch):
                cy = (t.core_y[0] - t.window_y[0], t.core_y[1] - t.window_y[0])
                cx = (t.core_x[0] - t.window_x[0], t.core_x[1] - t.window_x[0])
                output[0, :, t.core_y[0]:t.core_y[1], t.core_x[0]:t.core_x[1]] = result[item, :, cy[0]:cy[1], cx[0]:cx[1]]
    return output
