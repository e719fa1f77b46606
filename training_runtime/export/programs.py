"""Standalone programs of a classification model: `torch.export` (preferred) or TorchScript.

A program runs without the registry or this package's code: it maps a float batch
[N, 3, H, W] (already resized and normalised) to logits [N, num_labels]. Every program is
checked against the eager model on a fresh batch of another size before it is kept, so a
program that traced a data-dependent branch wrongly never reaches an artifact.

Detection and segmentation artifacts carry weights only: torchvision's detectors can be
scripted, but their scripted forward returns (losses, detections) and pre/post-processing
differs from eager mode, so the predictor rebuilds them from the registry instead.
"""

from __future__ import annotations

import copy
import threading
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

ProgramKind = Literal["export", "torchscript"]
PROGRAM_FILES: dict[str, str] = {"export": "program.pt2", "torchscript": "program.torchscript"}
MAX_BATCH = 4096
ATOL = 1e-4
RTOL = 1e-4
# torch.export.load is not thread-safe: its deserializer is a module global, and two threads
# loading at once (a service instance and an evaluation in one worker) fail with
# "_CURRENT_DESERIALIZER is already set".
_EXPORT_LOAD = threading.Lock()


class ProgramError(RuntimeError):
    """A program could not be built, or gives other outputs than the eager model."""

    code = "program_failed"


def _sample(batch: int, input_size: tuple[int, int], seed: int) -> Tensor:
    """A deterministic random batch of the model's input shape."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, *input_size, generator=generator)


def _build(kind: ProgramKind, model: nn.Module, sample: Tensor, path: Path) -> None:
    """Write the `kind` program of `model` (eval mode, CPU) to `path`."""
    if kind == "export":
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        program = torch.export.export(model, (sample,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still works
        traced = torch.jit.trace(model, sample, check_trace=False)
        torch.jit.save(traced, str(path))


def load_program(kind: str, path: Path, device: str | torch.device = "cpu") -> nn.Module:
    """The callable of a program file written by `write_program`, on `device`."""
    if kind == "export":
        with _EXPORT_LOAD:
            module = torch.export.load(str(path)).module()
        return module.to(device) if torch.device(device).type != "cpu" else module
    if kind == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=device)
    raise ProgramError(f"Unknown program kind {kind!r}; expected one of {sorted(PROGRAM_FILES)}.")


def write_program(kind: ProgramKind, model: nn.Module, folder: Path,
                  input_size: tuple[int, int], num_labels: int) -> str:
    """Write and verify the `kind` program of a classifier in `folder`; returns its file name.

    The model is copied to the CPU in eval mode (the caller's model is not changed). Raises
    ProgramError when building fails or the program's logits differ from the eager model's.
    """
    if kind not in PROGRAM_FILES:
        raise ProgramError(f"Unknown program kind {kind!r}; "
                           f"expected one of {sorted(PROGRAM_FILES)}.")
    eager = copy.deepcopy(model).cpu().eval()
    path = folder / PROGRAM_FILES[kind]
    try:
        with torch.no_grad():
            _build(kind, eager, _sample(2, input_size, seed=0), path)
            check = _sample(3, input_size, seed=1)
            expected = eager(check)
            got = load_program(kind, path)(check)
    except ProgramError:
        raise
    except Exception as exc:  # export/trace raise many types for unsupported models
        raise ProgramError(f"Building the {kind} program failed: {type(exc).__name__}: "
                           f"{exc}".strip()[:500]) from exc
    if tuple(expected.shape) != (3, num_labels):
        raise ProgramError(f"The model gives logits of shape {tuple(expected.shape)} for 3 "
                           f"images; expected (3, {num_labels}) for {num_labels} labels.")
    if not torch.allclose(got, expected, atol=ATOL, rtol=RTOL):
        difference = (got - expected).abs().max().item()
        raise ProgramError(f"The {kind} program differs from the eager model by {difference:.3g} "
                           f"(tolerance {ATOL}); export with program='none'.")
    return path.name
