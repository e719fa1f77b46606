"""Training-loop overhead: training_runtime.train against a bare torch loop, same run.

Both train the registry's SmallCNN on the same synthetic 3x32x32 tensors (10 classes), with the
same batch size, optimizer (SGD, momentum 0.9) and batch order, through a DataLoader over the
same TensorDataset. The bare loop does forward, loss, backward, step and nothing else; the
runtime adds its schedule, progress events, cancellation and deadline checks, resource
sampling and an atomic checkpoint every epoch. Rounds alternate and medians are reported.

Goal: overhead <= 5 %.  Usage: .venv/bin/python bench/train_overhead.py [--samples 4096]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training_runtime.models import build, get  # noqa: E402
from training_runtime.train.batches import IndexSampler, epoch_order  # noqa: E402
from training_runtime.train.config import TrainConfig  # noqa: E402
from training_runtime.train.loop import train  # noqa: E402


def data(samples: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (samples,), generator=generator)
    return TensorDataset(x, y)


def model() -> nn.Module:
    torch.manual_seed(0)
    return build(get("classification", "small_cnn"), 10)


def bare(dataset: TensorDataset, epochs: int, batch_size: int) -> float:
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        order = epoch_order(len(dataset), 0, epoch)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=IndexSampler(order))
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def runtime(dataset: TensorDataset, epochs: int, batch_size: int) -> float:
    net = model()
    with tempfile.TemporaryDirectory() as directory:
        config = TrainConfig(checkpoint_dir=Path(directory), epochs=epochs, lr=0.01,
                             batch_size=batch_size, schedule="cosine", optimizer="sgd")
        started = time.perf_counter()
        train(net, dataset, None, config)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps this noisy 2-core machine steadier)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = data(args.samples)
    bare(dataset, 1, args.batch_size)  # warm up kernels and allocator for both
    times = [(bare(dataset, args.epochs, args.batch_size),
              runtime(dataset, args.epochs, args.batch_size)) for _ in range(args.rounds)]
    bare_s = statistics.median(b for b, _ in times)
    runtime_s = statistics.median(r for _, r in times)
    print(f"SmallCNN, {args.samples} samples x {args.epochs} epochs, batch {args.batch_size}, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"bare torch loop   {bare_s:7.2f} s")
    overhead = 100 * (runtime_s / bare_s - 1)
    print(f"training_runtime  {runtime_s:7.2f} s   overhead {overhead:+.1f} % "
          f"(goal <= 5 %; rounds: "
          f"{', '.join(f'{100 * (r / b - 1):+.1f}%' for b, r in times)})")


if __name__ == "__main__":
    main()
