"""DDP on CPU: two gloo processes take the same steps as one process over the same batches."""

import socket

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
