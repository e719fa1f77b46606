"""Portable formats of a trained model: ONNX and TorchScript files beside the platform's own.

Every file is checked against the eager model on sample inputs other than the ones it was built
from (onnxruntime for ONNX, torch.jit.load for TorchScript); the largest absolute difference is
recorded and must stay under MAX_ABS_DIFF. A format that cannot be built or does not match is
recorded with the reason instead of a file, so the manifest always says what exists and why not.

Inputs and outputs (also written to the manifest's `exports` entry, see `io_of`):
- classification: input "images" float32 [N, 3, H, W] RGB, resized to HxW, scaled to [0, 1] then
  normalised with the manifest's mean/std; output "logits" float32 [N, num_labels] (softmax them).
- detection/segmentation: input "image" float32 [1, 3, H, W] RGB in [0, 1] at exactly HxW (the
  file is exported at a fixed image size); outputs "boxes" [K, 4] (x1, y1, x2, y2 in pixels of the
  HxW input), "labels" int64 [K] (1-based: label k is labels[k - 1]), "scores" [K], and for
  segmentation "masks" [K, 1, H, W] (probabilities, threshold at 0.5).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

ONNX_OPSET = 17  # read by onnxruntime >= 1.12 and most other runtimes
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.torchscript.pt"
MAX_ABS_DIFF = 1e-3
FORMATS = ("onnx", "torchscript")


class ExportFailed(RuntimeError):
    """A format could not be built, or its outputs differ from the eager model's."""


class _Detections(nn.Module):
    """A torchvision detector as a function of one fixed-size image batch [1, 3, H, W] to its
    post-processed tensors (what ONNX and tracing can hold: no lists of dicts)."""

    def __init__(self, model: nn.Module, masks: bool) -> None:
        super().__init__()
        self.model = model
        self.masks = masks

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        out = self.model([image[0]])[0]
        if self.masks:
            return out["boxes"], out["labels"], out["scores"], out["masks"]
        return out["boxes"], out["labels"], out["scores"]


def io_of(scenario: str, input_size: tuple[int, int], num_labels: int) -> dict[str, Any]:
    """The inputs and outputs of the exported files, as the manifest documents them."""
    height, width = input_size
    if scenario == "classification":
        return {"inputs": [{"name": "images", "dtype": "float32",
                            "shape": ["batch", 3, height, width]}],
                "outputs": [{"name": "logits", "dtype": "float32",
                             "shape": ["batch", num_labels]}]}
    outputs = [{"name": "boxes", "dtype": "float32", "shape": ["detections", 4]},
               {"name": "labels", "dtype": "int64", "shape": ["detections"]},
               {"name": "scores", "dtype": "float32", "shape": ["detections"]}]
    if scenario == "segmentation":
        outputs.append({"name": "masks", "dtype": "float32",
                        "shape": ["detections", 1, height, width]})
    return {"inputs": [{"name": "image", "dtype": "float32", "shape": [1, 3, height, width]}],
            "outputs": outputs}


def _callable(model: nn.Module, scenario: str) -> nn.Module:
    """The CPU eval-mode module the files are built from (the caller's model is not changed)."""
    eager = copy.deepcopy(model).cpu().eval()
    return eager if scenario == "classification" else _Detections(
        eager, masks=scenario == "segmentation").eval()


def _samples(scenario: str, input_size: tuple[int, int], seed: int) -> Tensor:
    """Deterministic sample inputs: 2 images for a classifier (batch is dynamic), 1 else."""
    generator = torch.Generator().manual_seed(seed)
    batch = 2 + seed if scenario == "classification" else 1
    return torch.rand(batch, 3, *input_size, generator=generator)


def _as_tuple(output: Any) -> tuple[np.ndarray, ...]:
    items = output if isinstance(output, tuple | list) else (output,)
    return tuple(np.asarray(t.detach().numpy() if isinstance(t, Tensor) else t) for t in items)


def _difference(expected: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...]) -> float:
    """The largest absolute difference; inf when shapes or counts differ."""
    if len(expected) != len(got):
        return float("inf")
    worst = 0.0
    for a, b in zip(expected, got, strict=True):
        if a.shape != b.shape:
            return float("inf")
        if a.size:
            worst = max(worst, float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()))
    return worst


def _onnx(module: nn.Module, scenario: str, sample: Tensor, path: Path,
          io: dict[str, Any]) -> None:
    inputs = [i["name"] for i in io["inputs"]]
    outputs = [o["name"] for o in io["outputs"]]
    dynamic = ({"images": {0: "batch"}, "logits": {0: "batch"}} if scenario == "classification"
               else {name: {0: "detections"} for name in outputs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent control flow
        torch.onnx.export(module, (sample,), str(path), input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, opset_version=ONNX_OPSET,
                          dynamo=False)


def _run_onnx(path: Path, check: Tensor) -> tuple[np.ndarray, ...]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return tuple(np.asarray(x) for x in session.run(None, {name: check.numpy()}))


def _torchscript(module: nn.Module, sample: Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated and traces with warnings
        traced = torch.jit.trace(module, sample, check_trace=False)
        torch.jit.save(traced, str(path))


def _run_torchscript(path: Path, check: Tensor) -> tuple[np.ndarray, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")
    return _as_tuple(loaded(check))


def _one(kind: str, module: nn.Module, scenario: str, folder: Path,
         input_size: tuple[int, int], io: dict[str, Any]) -> dict[str, Any]:
    """Build and check one format; its manifest entry (file and difference) or ExportFailed."""
    name = ONNX_FILE if kind == "onnx" else TORCHSCRIPT_FILE
    path = folder / name
    try:
        with torch.no_grad():
            if kind == "onnx":
                _onnx(module, scenario, _samples(scenario, input_size, 0), path, io)
            else:
                _torchscript(module, _samples(scenario, input_size, 0), path)
            check = _samples(scenario, input_size, 1)
            expected = _as_tuple(module(check))
            got = _run_onnx(path, check) if kind == "onnx" else _run_torchscript(path, check)
    except Exception as exc:  # exporters raise many types for what they cannot express
        path.unlink(missing_ok=True)
        raise ExportFailed(f"{type(exc).__name__}: {exc}".strip()[:300]) from exc
    difference = _difference(expected, got)
    if not difference <= MAX_ABS_DIFF:
        path.unlink(missing_ok=True)
        raise ExportFailed(f"outputs differ from the eager model by {difference:.3g} "
                           f"(bound {MAX_ABS_DIFF}) on sample inputs")
    entry: dict[str, Any] = {"file": name, "max_abs_diff": difference, **io}
    if kind == "onnx":
        entry["opset"] = ONNX_OPSET
    if scenario != "classification":
        entry["fixed_input_size"] = list(input_size)
    return entry


def write_formats(model: nn.Module, folder: Path, *, scenario: str,
                  input_size: tuple[int, int], num_labels: int) -> dict[str, dict[str, Any]]:
    """Write the ONNX and TorchScript files of `model` in `folder`; per format its manifest
    entry: {"file", "max_abs_diff", inputs, outputs, ...} or {"unavailable": reason}."""
    module = _callable(model, scenario)
    io = io_of(scenario, input_size, num_labels)
    entries: dict[str, dict[str, Any]] = {}
    for kind in FORMATS:
        try:
            entries[kind] = _one(kind, module, scenario, folder, input_size, io)
        except ExportFailed as exc:
            entries[kind] = {"unavailable": str(exc)}
    return entries
