"""Data loading sized from the spec: workers and threads never oversubscribe the cores, the
CUDA-only speed-ups are chosen for CUDA only, and persistent workers serve every epoch."""

import os

import pytest
import torch
from torch.utils.data import Dataset

from training_runtime.train import train
from training_runtime.train.batches import EpochLoaders, epoch_loader
from training_runtime.train.loading import apply_threads, plan_loading

from .test_train_support import blobs, config_in, tiny_net


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1"])
def test_workers_and_threads_fit_the_cores(cores, device):
    plan = plan_loading(cores, device)

    assert plan.num_workers + plan.torch_threads <= cores
    assert plan.torch_threads >= 1 and plan.num_workers >= 0
    assert plan.persistent_workers == (plan.num_workers > 0)


def test_cuda_gets_workers_pinning_amp_and_channels_last_and_the_cpu_does_not():
    cuda, cpu = plan_loading(8, "cuda"), plan_loading(8, "cpu")

    assert (cuda.pin_memory, cuda.non_blocking, cuda.amp, cuda.channels_last) == (True,) * 4
    assert (cpu.pin_memory, cpu.non_blocking, cpu.amp, cpu.channels_last) == (False,) * 4
    assert cuda.num_workers > cpu.num_workers and cpu.torch_threads > cuda.torch_threads
    assert plan_loading(8, "cuda", mixed_precision=False).amp is False
    assert plan_loading(2, "cpu").num_workers == 0  # two cores: both compute
    assert plan_loading(16, "cuda", batches_per_epoch=2).num_workers == 2
    with pytest.raises(ValueError, match="cores"):
        plan_loading(0, "cpu")


def test_apply_threads_sets_torchs_intra_op_threads():
    before = torch.get_num_threads()
    try:
        apply_threads(plan_loading(3, "cpu"))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


class Pids(Dataset):
    """Yields (the loading process's id, index)."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return torch.tensor(os.getpid()), i


def test_persistent_workers_serve_every_epoch_in_the_same_order():
    loaders = EpochLoaders(Pids(), batch_size=4, seed=5, num_workers=2, collate_fn=None,
                           pin_memory=False, persistent_workers=True)
    pids, orders = set(), []
    for epoch in range(3):
        order = []
        for batch_pids, indices in loaders.epoch(epoch, 0):
            pids.update(batch_pids.tolist())
            order += indices.tolist()
        orders.append(order)
        fresh = [i for _, b in epoch_loader(Pids(), batch_size=4, seed=5, epoch=epoch,
                                            start_batch=0, num_workers=0, collate_fn=None,
                                            pin_memory=False) for i in b.tolist()]
        assert order == fresh
    assert loaders.epoch(1, 2) is loaders.epoch(0, 0)
    assert len(pids) == 2 and os.getpid() not in pids  # two workers, started once
    assert [i for _, b in loaders.epoch(1, 2) for i in b.tolist()] == orders[1][8:]
    loaders.close()


def test_training_with_persistent_workers_completes(tmp_path):
    result = train(tiny_net(), blobs(32), blobs(9), config_in(
        tmp_path, epochs=2, num_workers=2, persistent_workers=True))

    assert result.stop_reason == "completed" and result.epochs_run == 2
