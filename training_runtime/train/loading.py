"""How a worker loads data and uses its cores, sized from the compute spec.

    plan = plan_loading(cores=8, device="cuda")
    apply_threads(plan)        # torch.set_num_threads: intra-op threads of this process
    TrainConfig(..., num_workers=plan.num_workers, persistent_workers=plan.persistent_workers,
                amp=plan.amp, channels_last=plan.channels_last)

DataLoader worker processes run one torch thread each (PyTorch sets that in every worker), so
``num_workers + torch_threads <= cores``: no process oversubscribes the spec's cores. On CUDA,
decoding is the bottleneck and the GPU does the maths: most cores load data, batches go to
pinned memory and are copied with non_blocking, and mixed precision and channels_last are on.
On the CPU the model needs the cores: a few workers decode while the rest compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_WORKERS = 8  # beyond this, more decoding processes rarely help one training process


@dataclass(frozen=True)
class LoadingPlan:
    """Loader workers, this process's torch threads, and the CUDA-only speed-ups."""

    num_workers: int
    torch_threads: int
    persistent_workers: bool
    pin_memory: bool
    non_blocking: bool
    amp: bool
    channels_last: bool
    reasons: tuple[str, ...] = ()


def plan_loading(cores: int, device: str, *, mixed_precision: bool = True,
                 batches_per_epoch: int | None = None) -> LoadingPlan:
    """The plan for `cores` CPU cores of the spec on `device` ("cpu", "cuda", "cuda:N")."""
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores must be an integer >= 1, got {cores!r}")
    cuda = device.startswith("cuda")
    if cuda:
        workers = min(MAX_WORKERS, cores - 1)
        threads = max(1, min(4, cores - workers))
    else:
        workers = min(MAX_WORKERS, cores // 4) if cores >= 4 else 0
        threads = max(1, cores - workers)
    if batches_per_epoch is not None:
        workers = min(workers, max(0, batches_per_epoch))  # no idle processes on tiny data
    reasons = [f"{cores} cores on {'CUDA' if cuda else 'the CPU'}: {workers} loader workers and "
               f"{threads} torch threads"]
    if cuda:
        reasons.append("pinned memory, non-blocking copies, channels_last"
                       + (" and float16 autocast" if mixed_precision else ""))
    return LoadingPlan(num_workers=workers, torch_threads=threads,
                       persistent_workers=workers > 0, pin_memory=cuda, non_blocking=cuda,
                       amp=cuda and mixed_precision, channels_last=cuda,
                       reasons=tuple(reasons))


def apply_threads(plan: LoadingPlan) -> None:
    """Set this process's intra-op torch threads to the plan's."""
    torch.set_num_threads(plan.torch_threads)
