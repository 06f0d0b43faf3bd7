"""torchrun / DistributedDataParallel plumbing.

``torchrun --nproc_per_node N train.py ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; with ``WORLD_SIZE > 1`` the trainer joins a process group (gloo on CPU,
nccl on CUDA), wraps the networks in DDP (``model.wrap_for_ddp``) and samples its own shard
of the slices.  Rank 0 alone writes logs, samples and checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

from ..errors import InvalidParameterError


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info_from_env(environ: Optional[Mapping[str, str]] = None) -> DistInfo:
    """Read torchrun's ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` (defaults: one process)."""
    environ = os.environ if environ is None else environ
    try:
        world = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
        local = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InvalidParameterError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    if world < 1 or not 0 <= rank < world:
        raise InvalidParameterError(f"RANK {rank} is outside WORLD_SIZE {world}")
    return DistInfo(rank=rank, local_rank=local, world_size=world)


def resolve_device(requested: str, info: DistInfo):
    """``auto`` -> CUDA when available, else CPU; under DDP on CUDA each rank its LOCAL_RANK GPU."""
    import torch

    requested = str(requested)
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidParameterError("device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
        if requested == "cuda":
            requested = f"cuda:{info.local_rank if info.enabled else torch.cuda.current_device()}"
        device = torch.device(requested)
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def init_process_group(info: DistInfo, device) -> None:
    """Join the process group when running under torchrun with more than one process."""
    if not info.enabled:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


def destroy_process_group(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def mean_across_ranks(values, info: DistInfo, device):
    """Average a dict of floats over all ranks (every rank must call it with the same keys)."""
    if not info.enabled or not values:
        return dict(values)
    import torch
    import torch.distributed as dist

    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return {k: float(v) / info.world_size for k, v in zip(keys, tensor.tolist())}


def ddp_wrapper(device):
    """A function ``module -> DistributedDataParallel(module)`` for ``model.wrap_for_ddp``."""
    from torch.nn.parallel import DistributedDataParallel

    def wrap(module):
        if not any(p.requires_grad for p in module.parameters()):
            return module  # e.g. an EMA copy: nothing to synchronise
        if device.type == "cuda":
            return DistributedDataParallel(module, device_ids=[device.index], output_device=device.index)
        return DistributedDataParallel(module)

    return wrap
