"""DDP on CPU: two gloo processes take the same steps as one process over the same batches."""

import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional

from training_runtime.train import distributed
from training_runtime.train.batches import epoch_order

WORLD, PER_RANK_BATCH, EPOCHS, SEED, N = 2, 4, 3, 7, 21  # 21: padded to 22, last batch short


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, generator=generator)
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).long()
    return x, y


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))


def run(model, order_of, batch_size, lr=0.5):
    """Plain SGD over each epoch's order in batches; returns the mean loss of each epoch."""
    x, y = data()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(EPOCHS):
        order = order_of(epoch)
        total = []
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total.append(float(distributed.all_reduce_mean(loss)))
        losses.append(sum(total) / len(total))
    return losses


def ddp_worker(rank, port, out):
    env = {"RANK": str(rank), "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(rank),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    ctx = distributed.setup_from_env(env, device_type="cpu", timeout_s=60)
    try:
        model = distributed.wrap_model(tiny_model(), ctx.device)
        losses = run(model, lambda epoch: distributed.shard_order(
            epoch_order(N, SEED, epoch), ctx.rank, ctx.world_size), PER_RANK_BATCH)
        torch.save({"state": model.module.state_dict(), "losses": losses,
                    "main": distributed.is_main_process(), "backend": ctx.backend},
                   out / f"rank{rank}.pt")
    finally:
        distributed.cleanup()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(ddp_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def test_both_ranks_end_with_identical_weights(ddp_results):
    first, second = ddp_results
    assert first["backend"] == "gloo"
    assert [first["main"], second["main"]] == [True, False]
    for key, value in first["state"].items():
        assert torch.equal(value, second["state"][key]), key


def test_ddp_equals_one_process_over_the_same_global_batches(ddp_results):
    """Equal per-rank shards: the average of per-rank mean gradients is the global mean."""
    single = tiny_model()
    losses = run(single, padded_order, PER_RANK_BATCH * WORLD)
    for key, value in single.state_dict().items():
        assert torch.allclose(value, ddp_results[0]["state"][key], atol=1e-6), key
    assert losses[-1] < losses[0]
    assert ddp_results[0]["losses"] == pytest.approx(ddp_results[1]["losses"])


def padded_order(epoch):
    """The epoch's order with the samples shard_order repeats so that ranks get as many."""
    order = epoch_order(N, SEED, epoch)
    return order + order[:(-N) % WORLD]


def test_shards_interleave_the_seeded_order_and_pad_to_equal_length():
    order = list(range(10, 17))
    shards = [distributed.shard_order(order, r, 3) for r in range(3)]
    assert shards == [[10, 13, 16], [11, 14, 10], [12, 15, 11]]
    assert distributed.shard_order(order, 1, 3, pad=False) == [11, 14]
    with pytest.raises(ValueError):
        distributed.shard_order(order, 3, 3)


def test_without_torchrun_everything_is_one_process():
    ctx = distributed.setup_from_env({}, device_type="cpu")
    model = nn.Linear(2, 2)
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    assert distributed.wrap_model(model, "cpu") is model
    assert distributed.is_main_process()
    assert torch.equal(distributed.all_reduce_mean(torch.tensor([1.0, 3.0])),
                       torch.tensor([1.0, 3.0]))


def test_a_world_without_a_master_address_is_refused():
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        distributed.setup_from_env({"RANK": "0", "WORLD_SIZE": "2"}, device_type="cpu")


# --- train(..., distributed=ctx): the loop itself over two gloo processes ----------------------

TRAIN_N, TRAIN_BATCH, TRAIN_EPOCHS = 32, 4, 2  # 32 divides by the world: no padded samples


class EventCounter:
    """Counts every event the loop sends to it."""

    def __init__(self):
        self.count = 0

    def on_step(self, progress):
        self.count += 1

    def on_epoch(self, progress):
        self.count += 1

    def on_checkpoint(self, path):
        self.count += 1

    def on_stop(self, stopped):
        self.count += 1


def train_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def train_config(checkpoint_dir, batch_size, **overrides):
    from training_runtime.train.config import TrainConfig

    values = dict(checkpoint_dir=checkpoint_dir, epochs=TRAIN_EPOCHS, lr=0.1,
                  batch_size=batch_size, warmup_epochs=0.5, seed=SEED, weight_decay=1e-4)
    values.update(overrides)
    return TrainConfig(**values)


def train_worker(rank, port, out):
    import threading

    from training_runtime.train import checkpoint as ckpt
    from training_runtime.train import train

    from .test_train_support import blobs

    env = {"RANK": str(rank), "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(rank),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    ctx = distributed.setup_from_env(env, device_type="cpu", timeout_s=60)
    saves = []
    real_save = ckpt.save_checkpoint

    def counting_save(path, state):
        saves.append(str(path))
        real_save(path, state)

    ckpt.save_checkpoint = counting_save
    try:
        model, counter = train_model(), EventCounter()
        result = train(model, blobs(TRAIN_N), blobs(12, seed=5),
                       train_config(out / "ckpt", TRAIN_BATCH), callbacks=[counter],
                       distributed=ctx)
        # A cancel seen by rank 1 alone must stop both ranks (else rank 0 would hang in DDP).
        cancel = threading.Event()
        if rank == 1:
            cancel.set()
        stopped = train(train_model(), blobs(TRAIN_N), None,
                        train_config(out / "cancelled", TRAIN_BATCH), cancel=cancel,
                        distributed=ctx)
        (out / f"events{rank}.txt").write_text(str(counter.count))
        torch.save({"state": model.state_dict(), "history": result.history,
                    "stop_reason": result.stop_reason, "global_step": result.global_step,
                    "saves": saves, "cancelled": (stopped.stop_reason, stopped.global_step)},
                   out / f"train{rank}.pt")
    finally:
        ckpt.save_checkpoint = real_save
        distributed.cleanup()


@pytest.fixture(scope="module")
def ddp_train_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_train")
    mp.spawn(train_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    results = [torch.load(out / f"train{r}.pt") for r in range(WORLD)]
    events = [int((out / f"events{r}.txt").read_text()) for r in range(WORLD)]
    return out, results, events


def test_train_with_ddp_keeps_ranks_identical_and_reports_from_rank_0(ddp_train_results):
    out, (first, second), events = ddp_train_results
    for key, value in first["state"].items():
        assert torch.equal(value, second["state"][key]), key
    assert first["stop_reason"] == second["stop_reason"] == "completed"
    steps = TRAIN_EPOCHS * TRAIN_N // (WORLD * TRAIN_BATCH)
    assert first["global_step"] == second["global_step"] == steps
    def agreed(history):  # elapsed_s is each rank's own clock
        return [{k: v for k, v in entry.items() if k != "elapsed_s"} for entry in history]

    assert agreed(first["history"]) == agreed(second["history"])  # global losses, metrics
    losses = [entry["train_loss"] for entry in first["history"]]
    assert losses[-1] < losses[0]
    # Only rank 0 writes checkpoints and calls back: steps + epochs + checkpoints + stop.
    assert second["saves"] == [] and events[1] == 0
    assert first["saves"] and (out / "ckpt" / "last.pt").exists()
    first_run_saves = [s for s in first["saves"] if Path(s).parent.name == "ckpt"]
    assert events[0] == steps + TRAIN_EPOCHS + len(first_run_saves) + 1
    assert str(out / "cancelled" / "last.pt") in first["saves"]  # the cancelled run saved too
    # Rank 1's cancel stopped both ranks before their first step.
    assert first["cancelled"] == second["cancelled"] == ("cancelled", 0)


def test_train_with_ddp_equals_one_process_with_the_global_batch(ddp_train_results, tmp_path):
    """Both ranks' batch j together is slice j of the epoch's order, DDP averages the per-rank
    mean gradients (= the mean over the global batch), and the schedule counts the same steps,
    so one process with batch_size * W takes the same steps (no dropout: RNG use is equal)."""
    from training_runtime.train import train

    from .test_train_support import blobs

    _, (first, _), _ = ddp_train_results
    single = train_model()
    result = train(single, blobs(TRAIN_N), blobs(12, seed=5),
                   train_config(tmp_path / "single", TRAIN_BATCH * WORLD))
    assert result.global_step == first["global_step"]
    for key, value in single.state_dict().items():
        assert torch.allclose(value, first["state"][key], atol=1e-6), key
    assert [e["train_loss"] for e in result.history] == pytest.approx(
        [e["train_loss"] for e in first["history"]], abs=1e-5)
