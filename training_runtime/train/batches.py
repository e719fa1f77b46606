"""Which samples each step sees, and moving batches to the device.

Each epoch's order is a permutation drawn from a generator seeded by (seed, epoch), so it does
not depend on the global RNG, and a resumed run can start an epoch at any batch by slicing the
order. A DistributedSampler-style shard per rank can later slice the same order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from training_runtime.train.distributed import shard_order


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch`'s shuffle (0-based epoch)."""
    return (seed * 1_000_003 + epoch * 7_919 + 1) % 2**63


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The sample indices of epoch `epoch`, shuffled."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=generator).tolist()


class IndexSampler(Sampler[int]):
    """Yields the given indices in order."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and `random` in a DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def epoch_loader(dataset: Dataset, *, batch_size: int, seed: int, epoch: int, start_batch: int,
                 num_workers: int, collate_fn: Callable[..., Any] | None,
                 pin_memory: bool, rank: int = 0, world_size: int = 1) -> DataLoader:
    """The loader of epoch `epoch`'s batches from batch `start_batch` on.

    With `world_size` > 1 the loader holds only rank `rank`'s shard of the order
    (`distributed.shard_order`, padded so every rank takes as many steps).

    Passing our own generator keeps the DataLoader from drawing its worker base seed from the
    global RNG, which a resumed run would otherwise see in a different state.
    """
    order = epoch_order(len(dataset), seed, epoch)
    if world_size > 1:
        order = shard_order(order, rank, world_size)
    order = order[start_batch * batch_size:]
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch) ^ 0x5EED)
    return DataLoader(dataset, batch_size=batch_size, sampler=IndexSampler(order),
                      num_workers=num_workers, collate_fn=collate_fn, pin_memory=pin_memory,
                      generator=generator, worker_init_fn=_seed_worker if num_workers else None)


def eval_loader(dataset: Dataset, *, batch_size: int, num_workers: int,
                collate_fn: Callable[..., Any] | None, pin_memory: bool,
                persistent_workers: bool = False) -> DataLoader:
    """The validation loader: fixed order, a fixed generator (leaves the global RNG alone)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=collate_fn, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(0),
                      persistent_workers=persistent_workers and num_workers > 0,
                      worker_init_fn=_seed_worker if num_workers else None)


class EpochLoaders:
    """Each epoch's loader. With persistent workers, one DataLoader serves every epoch: its
    sampler's order is replaced before each epoch, so the worker processes (and their dataset
    copies) start once per run instead of once per epoch.

    The epoch orders are the same either way; what differs with persistent workers is the
    augmentation randomness inside workers, seeded once per run rather than once per epoch.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, seed: int, num_workers: int,
                 collate_fn: Callable[..., Any] | None, pin_memory: bool,
                 persistent_workers: bool, rank: int = 0, world_size: int = 1) -> None:
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.num_workers, self.collate_fn, self.pin_memory = num_workers, collate_fn, pin_memory
        self.persistent = persistent_workers and num_workers > 0
        self.rank, self.world_size = rank, world_size
        self.sampler = IndexSampler([])
        self.loader: DataLoader | None = None

    def epoch(self, epoch: int, start_batch: int) -> DataLoader:
        """The loader of epoch `epoch` from batch `start_batch` on."""
        if not self.persistent:
            return epoch_loader(self.dataset, batch_size=self.batch_size, seed=self.seed,
                                epoch=epoch, start_batch=start_batch,
                                num_workers=self.num_workers, collate_fn=self.collate_fn,
                                pin_memory=self.pin_memory, rank=self.rank,
                                world_size=self.world_size)
        order = epoch_order(len(self.dataset), self.seed, epoch)
        if self.world_size > 1:
            order = shard_order(order, self.rank, self.world_size)
        self.sampler.indices = order[start_batch * self.batch_size:]
        if self.loader is None:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch) ^ 0x5EED)
            self.loader = DataLoader(
                self.dataset, batch_size=self.batch_size, sampler=self.sampler,
                num_workers=self.num_workers, collate_fn=self.collate_fn,
                pin_memory=self.pin_memory, generator=generator, persistent_workers=True,
                worker_init_fn=_seed_worker)
        return self.loader

    def close(self) -> None:
        """Let the persistent workers go (they exit when their loader is collected)."""
        self.loader = None


def to_device(batch: Any, device: torch.device, *, channels_last: bool = False) -> Any:
    """`batch` with every tensor (nested in tuples, lists, dicts) on `device`.

    With `channels_last`, 4-D floating tensors (image batches) are also made channels_last.
    """
    if isinstance(batch, torch.Tensor):
        moved = batch.to(device, non_blocking=device.type == "cuda")
        if channels_last and moved.dim() == 4 and moved.is_floating_point():
            moved = moved.contiguous(memory_format=torch.channels_last)
        return moved
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last=channels_last) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device, channels_last=channels_last) for v in batch]
    if isinstance(batch, tuple):
        items = [to_device(v, device, channels_last=channels_last) for v in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else tuple(items)
    return batch


def batch_size_of(batch: Any) -> int:
    """How many samples a batch holds: an (x, y) tensor pair or (images, targets) tuples."""
    first = batch
    if isinstance(batch, dict) and batch:
        first = next(iter(batch.values()))
    elif isinstance(batch, list | tuple) and batch:
        first = batch[0]
    if isinstance(first, torch.Tensor):
        return int(first.shape[0]) if first.dim() else 1
    if isinstance(first, list | tuple):
        return len(first)
    return 1
