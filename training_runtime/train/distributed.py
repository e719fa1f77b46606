"""Data-parallel training across processes with torch.distributed (DDP), launched by torchrun.

    ctx = setup_from_env()                    # one process per GPU (or CPU process, gloo)
    model = wrap_model(model, ctx.device)     # DistributedDataParallel when world_size > 1
    order = shard_order(epoch_order(n, seed, epoch), ctx.rank, ctx.world_size)
    ...                                       # per-rank batches of order; DDP averages grads
    if is_main_process(): save / report
    cleanup()

Each rank takes every world_size-th index of the epoch's seeded permutation (batches.py), so
batch j of all ranks together is the contiguous slice j of the permutation: with per-rank batch
b, a world of W processes sees the same global batches of b * W as one process with batch b * W,
and since DDP averages gradients over ranks, takes the same steps.

Without torchrun's variables (or with WORLD_SIZE=1) everything here is a no-op for one process.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among world_size, its device and the backend."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints and reports progress."""
        return self.rank == 0


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}; torchrun sets it, "
                         "or leave it unset for one process") from None


def setup_from_env(env: Mapping[str, str] | None = None, *, device_type: str | None = None,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> DistributedContext:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    nccl on CUDA (each process on cuda:LOCAL_RANK), gloo on CPU. `device_type` ("cpu" or
    "cuda") overrides the choice; by default CUDA is used when available.
    """
    env = os.environ if env is None else env
    world_size = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0, got RANK={rank}, "
                         f"WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}")
    kind = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device_type 'cuda' was asked for but CUDA is not available")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size == 1:
        return DistributedContext(0, 1, local_rank, device, None)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not env.get(name):
            raise ValueError(f"{name} is not set: launch with torchrun, or set MASTER_ADDR and "
                             "MASTER_PORT for every process")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(
            backend, init_method=f"tcp://{env['MASTER_ADDR']}:{env['MASTER_PORT']}",
            rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=timeout_s))
    return DistributedContext(rank, world_size, local_rank, device, backend)


def world_size() -> int:
    """How many processes train together (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """Whether this process is rank 0 (always, without a process group)."""
    return rank() == 0


def wrap_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """`model` on `device`, wrapped in DistributedDataParallel when several processes train.

    Read weights through `.module` (the loop's `_unwrap`) to get the same state dict keys.
    """
    device = torch.device(device)
    model = model.to(device)
    if world_size() == 1:
        return model
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shard_order(order: Sequence[int], rank: int, world_size: int, *,
                pad: bool = True) -> list[int]:
    """This rank's share of an epoch's order: order[rank::world_size].

    With `pad` the order is first extended by wrapping around to a multiple of world_size (as
    DistributedSampler does), so every rank takes the same number of steps (DDP needs that:
    a rank with one step more would wait forever for the others' gradients).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    items = list(order)
    if pad and items and len(items) % world_size:
        missing = world_size - len(items) % world_size
        items += (items * (missing // len(items) + 1))[:missing]
    return items[rank::world_size]


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over all ranks (a new tensor; `tensor` itself is left alone)."""
    result = tensor.detach().clone()
    if world_size() == 1:
        return result
    dist.all_reduce(result, op=dist.ReduceOp.SUM)
    return result / world_size()


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        # Wait for every rank first: a rank tearing gloo down while a peer still talks to it
        # aborts the peer ("terminate called without an active exception").
        with contextlib.suppress(RuntimeError):
            dist.barrier()
        dist.destroy_process_group()
