"""Input pipeline + loop throughput: the platform's training against a bare torch loop.

Both read the same JPEG folder dataset through the platform's TorchDataset and train
transforms (decode, resize to 64x64, flip, jitter, normalise), with the same DataLoader settings
(batch size, workers, persistent workers, batch order) and the same small_cnn and optimiser.
The bare loop does forward, loss, backward and step; the platform adds its schedule, events,
stop checks and per-epoch checkpoints (no validation in either). A third run is the platform
with num_workers=0, what every task used before. Rounds alternate; medians are reported.

Goal: platform >= 0.95x the bare loop.  Usage: .venv/bin/python bench/train_pipeline.py
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training_runtime.data import TorchDataset, read_dataset, train_transforms  # noqa: E402
from training_runtime.models import build, get  # noqa: E402
from training_runtime.train import TrainConfig, train  # noqa: E402
from training_runtime.train.batches import IndexSampler, epoch_order  # noqa: E402
from training_runtime.train.loading import apply_threads, plan_loading  # noqa: E402


def make_images(root: Path, per_label: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for label in range(4):
        folder = root / f"label{label}"
        folder.mkdir(parents=True)
        for i in range(per_label):
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            pixels[:, :, label % 3] //= 2
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def model() -> nn.Module:
    torch.manual_seed(0)
    return build(get("classification", "small_cnn"), 4)


def bare(dataset: TorchDataset, epochs: int, batch: int, workers: int) -> float:
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    sampler = IndexSampler([])
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0)
    started = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        sampler.indices = epoch_order(len(dataset), 0, epoch)
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            optimizer.step()
    return time.perf_counter() - started


def platform(dataset: TorchDataset, epochs: int, batch: int, workers: int, folder: Path) -> float:
    config = TrainConfig(checkpoint_dir=folder, epochs=epochs, lr=0.01, batch_size=batch,
                         warmup_epochs=0, seed=0, num_workers=workers,
                         persistent_workers=workers > 0)
    net = model()
    started = time.perf_counter()
    train(net, dataset, None, config)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=48)
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="the spec's cores")
    args = parser.parse_args()
    plan = plan_loading(args.cores, "cpu")
    workers = max(1, plan.num_workers)  # at least one worker, to measure the loader path
    apply_threads(plan)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        make_images(root, args.per_label, args.side)
        index, _ = read_dataset(root, "classification", "folders")
        dataset = TorchDataset(index, None, train_transforms("classification", 64))
        images = len(dataset) * args.epochs
        times: dict[str, list[float]] = {"bare": [], "platform": [], "platform_w0": []}
        for r in range(args.rounds):
            times["bare"].append(bare(dataset, args.epochs, args.batch, workers))
            times["platform"].append(platform(dataset, args.epochs, args.batch, workers,
                                              Path(tmp) / f"p{r}"))
            times["platform_w0"].append(platform(dataset, args.epochs, args.batch, 0,
                                                 Path(tmp) / f"z{r}"))
    rate = {k: images / statistics.median(v) for k, v in times.items()}
    print(f"{len(dataset)} JPEGs {args.side}px -> 64px, {args.epochs} epochs, batch "
          f"{args.batch}, {workers} workers, {torch.get_num_threads()} torch threads, "
          f"{args.rounds} rounds")
    for key, values in times.items():
        print(f"  {key:12s} {rate[key]:8.1f} images/s  (runs: "
              f"{', '.join(f'{v:.2f}s' for v in values)})")
    print(f"platform / bare loop (anchor): {rate['platform'] / rate['bare']:.3f}x (goal >= 0.95)")
    print(f"platform / platform with num_workers=0: "
          f"{rate['platform'] / rate['platform_w0']:.2f}x")


if __name__ == "__main__":
    main()
