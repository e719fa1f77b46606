"""Predictor throughput against raw batched `model(x)` on the same images, same run.

A classification artifact (registry resnet18, 10 labels, 224x224, random weights) is exported
and loaded with `Predictor.load`. The raw anchor is the model called on already preprocessed,
stacked tensors; the Predictor is handed the images themselves (uint8 arrays at the input size)
and does its own conversion, normalisation, batching, softmax and top-k formatting.
Rounds alternate; medians are reported.

Goal: Predictor >= 0.9 x raw.  Usage: .venv/bin/python bench/predict.py [--batches 8]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training_runtime.export.artifact import export_artifact  # noqa: E402
from training_runtime.models import build, get  # noqa: E402
from training_runtime.predict.predictor import Predictor  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    labels = [f"class{i}" for i in range(10)]
    model = build(get("classification", args.model), len(labels)).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
              for _ in range(args.batch_size * args.batches)]
    with tempfile.TemporaryDirectory() as directory:
        path = export_artifact(model, Path(directory) / "artifact", scenario="classification",
                               model_name=args.model, labels=labels, input_size=args.size,
                               normalization=(MEAN, STD), metrics={}, program="none")
        predictor = Predictor.load(path, args.device)
        raw_model = predictor.model  # the very module the Predictor runs (weights, no program)
        batches = [images[i:i + args.batch_size] for i in range(0, len(images), args.batch_size)]
        ready = [torch.stack(predictor.preprocess(batch)[0]) for batch in batches]

        def raw() -> float:
            started = time.perf_counter()
            with torch.inference_mode():
                for x in ready:
                    raw_model(x)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - started

        def ours() -> float:
            started = time.perf_counter()
            for batch in batches:
                predictor.predict(batch, top_k=5)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - started

        raw(), ours()  # warm-up
        rounds = [(raw(), ours()) for _ in range(args.rounds)]
    raw_s = statistics.median(r for r, _ in rounds)
    ours_s = statistics.median(o for _, o in rounds)
    n = len(images)
    print(f"{args.model} {args.size}x{args.size}, batch {args.batch_size}, {n} images, "
          f"{args.device}")
    print(f"raw model(x)  {n / raw_s:8.1f} images/s")
    print(f"Predictor     {n / ours_s:8.1f} images/s   ratio {raw_s / ours_s:.2f} x "
          f"(goal >= 0.9 x; rounds: {', '.join(f'{r / o:.2f}' for r, o in rounds)})")


if __name__ == "__main__":
    main()
