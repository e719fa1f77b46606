"""Transfer learning: few images per label, pretrained on a related task vs from scratch.

The bench draws synthetic shapes (random colour, size, position, background noise). A source
task (circle, square, triangle, plus: 150 images each) trains the registry's small_cnn, whose
weights are saved like a WeightStore file. The target task (ring, diamond, cross, bar: at most
50 images per label) then trains twice with the same epochs, batch size and optimiser: once from
those weights through `training_runtime.weights.build_from_weights` (its head replaced for the
new labels), once from random weights. Both are scored on the same held-out target images.

Usage: .venv/bin/python bench/transfer.py [--per-label 20] [--epochs 6] [--seeds 2]
"""

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training_runtime.models import build, get  # noqa: E402
from training_runtime.train import TrainConfig, train  # noqa: E402
from training_runtime.weights import build_from_weights  # noqa: E402

SIZE = 32
SOURCE = ("circle", "square", "triangle", "plus")
TARGET = ("ring", "diamond", "cross", "bar")


def shape(kind: str, rng: random.Random) -> torch.Tensor:
    """One 3x32x32 float image of `kind`."""
    background = tuple(rng.randrange(0, 90) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    colour = tuple(rng.randrange(120, 256) for _ in range(3))
    r = rng.uniform(6, 12)
    cx, cy = rng.uniform(r + 1, SIZE - r - 1), rng.uniform(r + 1, SIZE - r - 1)
    box = (cx - r, cy - r, cx + r, cy + r)
    w = max(2, int(r / 3))
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "ring":
        draw.ellipse(box, outline=colour, width=w)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    elif kind == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    elif kind == "plus":
        draw.line([(cx - r, cy), (cx + r, cy)], fill=colour, width=w)
        draw.line([(cx, cy - r), (cx, cy + r)], fill=colour, width=w)
    elif kind == "cross":
        draw.line([(cx - r, cy - r), (cx + r, cy + r)], fill=colour, width=w)
        draw.line([(cx - r, cy + r), (cx + r, cy - r)], fill=colour, width=w)
    elif kind == "bar":
        angle = rng.uniform(0, math.pi)
        dx, dy = r * math.cos(angle), r * math.sin(angle)
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=colour, width=w + 1)
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    tensor = pixels.reshape(SIZE, SIZE, 3).permute(2, 0, 1).float() / 255
    return (tensor - 0.3) / 0.3


def dataset(kinds: tuple[str, ...], per_label: int, seed: int) -> TensorDataset:
    rng = random.Random(seed)
    images, labels = [], []
    for label, kind in enumerate(kinds):
        for _ in range(per_label):
            images.append(shape(kind, rng))
            labels.append(label)
    return TensorDataset(torch.stack(images), torch.tensor(labels))


def fit(model: torch.nn.Module, train_set: TensorDataset, test_set: TensorDataset, epochs: int,
        folder: Path, seed: int) -> float:
    config = TrainConfig(checkpoint_dir=folder, epochs=epochs, lr=3e-3, batch_size=16,
                         warmup_epochs=0, optimizer="adamw", weight_decay=0.01, seed=seed)
    result = train(model, train_set, test_set, config)
    return result.history[-1]["metrics"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=20, help="target images per label (<=50)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--source-per-label", type=int, default=150)
    parser.add_argument("--source-epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = get("classification", "small_cnn")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        torch.manual_seed(0)
        source = build(spec, len(SOURCE))
        source_acc = fit(source, dataset(SOURCE, args.source_per_label, 1),
                         dataset(SOURCE, 50, 2), args.source_epochs, work / "source", 0)
        weights = work / "source.pth"
        torch.save(source.state_dict(), weights)
        print(f"source task: {len(SOURCE)} labels x {args.source_per_label} images, "
              f"{args.source_epochs} epochs, accuracy {source_acc:.3f} "
              f"({time.perf_counter() - started:.0f}s)")
        test = dataset(TARGET, 100, 99)
        rows = []
        for seed in range(args.seeds):
            train_set = dataset(TARGET, args.per_label, 10 + seed)
            torch.manual_seed(seed)
            pretrained = fit(build_from_weights(spec, len(TARGET), weights), train_set, test,
                             args.epochs, work / f"p{seed}", seed)
            torch.manual_seed(seed)
            scratch = fit(build(spec, len(TARGET)), train_set, test, args.epochs,
                          work / f"s{seed}", seed)
            rows.append((pretrained, scratch))
            print(f"seed {seed}: target {len(TARGET)} labels x {args.per_label} images, "
                  f"{args.epochs} epochs: pretrained {pretrained:.3f}, scratch {scratch:.3f}")
    p = sum(r[0] for r in rows) / len(rows)
    s = sum(r[1] for r in rows) / len(rows)
    print(f"mean accuracy on 400 held-out target images: pretrained {p:.3f} vs scratch "
          f"{s:.3f} (anchor) = {p / max(s, 1e-9):.2f}x, +{(p - s) * 100:.1f} points")


if __name__ == "__main__":
    main()
