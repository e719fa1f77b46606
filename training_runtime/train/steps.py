"""The default classification step and evaluation; detection plugs in its own `step_fn`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional

StepFn = Callable[[nn.Module, Any], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EvaluateFn = Callable[[nn.Module, Any], dict[str, float]]


def classification_step(loss_fn: LossFn | None = None) -> StepFn:
    """A step_fn for (inputs, labels) batches: loss_fn(model(inputs), labels), cross-entropy by
    default."""
    criterion = loss_fn or functional.cross_entropy

    def step(model: nn.Module, batch: Any) -> torch.Tensor:
        inputs, labels = batch
        return criterion(model(inputs), labels)

    return step


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def classification_accuracy(model: nn.Module, loader: Any) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy over (inputs, labels) batches."""
    device = _model_device(model)
    correct, total, loss_sum = 0, 0, 0.0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        logits = model(inputs).float()
        loss_sum += float(functional.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(dim=1) == labels).sum())
        total += int(labels.shape[0])
    if total == 0:
        return {"accuracy": 0.0, "loss": 0.0}
    return {"accuracy": correct / total, "loss": loss_sum / total}
