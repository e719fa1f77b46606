"""Dataset readers with validation, label distribution and the hold-out split (SPEC T1, T10).

The readers need only Pillow. `train_transforms`, `eval_transforms` and `TorchDataset` need torch
and are loaded on first use, so importing this package never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from training_runtime.data.dataset import SCENARIOS, DatasetIndex, Sample, Scenario
from training_runtime.data.images import (
    ALLOWED_EXTENSIONS,
    DEFAULT_LIMITS,
    ImageInfo,
    ImageLimits,
    probe_image,
)
from training_runtime.data.read import SUPPORTED, dataset_fields, read_dataset
from training_runtime.data.report import Issue, ValidationReport

if TYPE_CHECKING:
    from training_runtime.data.torch_dataset import TorchDataset
    from training_runtime.data.transforms import eval_transforms, train_transforms

__all__ = [
    "ALLOWED_EXTENSIONS",
    "DEFAULT_LIMITS",
    "SCENARIOS",
    "SUPPORTED",
    "DatasetIndex",
    "ImageInfo",
    "ImageLimits",
    "Issue",
    "Sample",
    "Scenario",
    "TorchDataset",
    "ValidationReport",
    "dataset_fields",
    "eval_transforms",
    "probe_image",
    "read_dataset",
    "train_transforms",
]

_LAZY = {
    "TorchDataset": "training_runtime.data.torch_dataset",
    "train_transforms": "training_runtime.data.transforms",
    "eval_transforms": "training_runtime.data.transforms",
}


def __getattr__(name: str) -> Any:
    """Load the torch-backed names on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
