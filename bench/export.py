"""Images/s of an exported ONNX file under onnxruntime against the eager model under torch,
classifier and detector, on the same inputs in the same run (the eager model is the anchor).

The classifier (registry resnet18, 10 labels, 224x224, random weights) runs batches of
--batch-size; the detector (fasterrcnn_mobilenet_v3_large_320_fpn, 3 labels, 320x320) one image
a call, as its ONNX file takes. Both sides use the same CPU threads (torch.get_num_threads());
rounds alternate and medians are reported. Export includes the eager/ONNX check of formats.py.

Usage: .venv/bin/python bench/export.py [--rounds 5] [--batch-size 16]
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training_runtime.export.formats import write_formats  # noqa: E402
from training_runtime.models import build, get  # noqa: E402

CASES = {"classifier": ("classification", "resnet18", (224, 224), {}),
         "detector": ("detection", "fasterrcnn_mobilenet_v3_large_320_fpn", (320, 320), {})}


def timed(fn: Callable[[], None], images: int, calls: int) -> float:
    """Images per second of `calls` calls of `fn`, each handling `images` images."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return images * calls / (time.perf_counter() - start)


def measure(name: str, batch_size: int, calls: int, rounds: int, folder: Path) -> None:
    import onnxruntime

    scenario, model_name, size, options = CASES[name]
    torch.manual_seed(0)
    model = build(get(scenario, model_name), num_classes=10 if scenario == "classification"
                  else 3, **options).eval()
    started = time.perf_counter()
    entries = write_formats(model, folder, scenario=scenario, input_size=size,
                            num_labels=10 if scenario == "classification" else 3)
    export_s = time.perf_counter() - started
    onnx = entries["onnx"]
    if "file" not in onnx:
        print(f"{name}: no ONNX file ({onnx['unavailable']})")
        return
    batch = batch_size if scenario == "classification" else 1
    images = torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(7))
    options_ = onnxruntime.SessionOptions()
    options_.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(folder / onnx["file"]), options_,
                                           providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: images.numpy()}

    def eager() -> None:
        with torch.inference_mode():
            model(images) if scenario == "classification" else model([images[0]])

    def ort() -> None:
        session.run(None, feed)

    eager(), ort()  # warm-up
    eager_rates, onnx_rates = [], []
    for _ in range(rounds):
        eager_rates.append(timed(eager, batch, calls))
        onnx_rates.append(timed(ort, batch, calls))
    e, o = statistics.median(eager_rates), statistics.median(onnx_rates)
    print(f"{name} ({model_name}, {size[0]}x{size[1]}, batch {batch}): eager torch "
          f"{e:.1f} img/s, onnxruntime {o:.1f} img/s, ratio onnx/eager {o / e:.2f} "
          f"(export+check {export_s:.1f} s, max abs diff {onnx['max_abs_diff']:.2g}; "
          f"rounds eager {[round(x, 1) for x in eager_rates]}, "
          f"onnx {[round(x, 1) for x in onnx_rates]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=sorted(CASES))
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    for name in [args.only] if args.only else list(CASES):
        with tempfile.TemporaryDirectory() as directory:
            measure(name, args.batch_size, args.calls, args.rounds, Path(directory))


if __name__ == "__main__":
    main()
