"""The optimiser and its learning rate over time: linear warmup, then cosine or step decay.

The schedule is a pure function of the global step, so a resumed run only needs the step count
to continue it exactly (no scheduler state to save).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from training_runtime.train.config import TrainConfig


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float, *,
          schedule: str = "cosine", steps_per_epoch: int = 1, step_size: int = 1,
          gamma: float = 0.1) -> float:
    """The learning rate of optimiser step `step` (0-based) of `total_steps`.

    Warmup ramps linearly from base_lr / warmup_steps (step 0) to the schedule's value at step
    warmup_steps - 1. Cosine then falls from base_lr to 0 at step == total_steps; step decay
    multiplies by gamma every `step_size` epochs (counted from step 0).
    """
    if step < 0 or total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"bad schedule position: step {step}, total {total_steps}, "
                         f"warmup {warmup_steps}")
    step = min(step, total_steps)
    if schedule == "cosine":
        span = total_steps - warmup_steps
        progress = 1.0 if span <= 0 else min(1.0, max(0.0, (step - warmup_steps) / span))
        value = base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "step":
        value = base_lr * gamma ** ((step // max(1, steps_per_epoch)) // step_size)
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    if step < warmup_steps:
        value *= (step + 1) / warmup_steps
    return value


@dataclass(frozen=True)
class LRSchedule:
    """`lr_at` bound to one run's sizes."""

    total_steps: int
    warmup_steps: int
    base_lr: float
    schedule: str
    steps_per_epoch: int
    step_size: int
    gamma: float

    @classmethod
    def from_config(cls, config: TrainConfig, steps_per_epoch: int) -> LRSchedule:
        """The schedule of `config` for an epoch of `steps_per_epoch` steps."""
        total = config.epochs * steps_per_epoch
        warmup = min(total, round(config.warmup_epochs * steps_per_epoch))
        return cls(total, warmup, config.lr, config.schedule, steps_per_epoch,
                   config.step_size, config.gamma)

    def lr(self, step: int) -> float:
        """The learning rate of global step `step`."""
        return lr_at(step, self.total_steps, self.warmup_steps, self.base_lr,
                     schedule=self.schedule, steps_per_epoch=self.steps_per_epoch,
                     step_size=self.step_size, gamma=self.gamma)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every parameter group's lr for `step` (times its optional `lr_scale`)."""
        value = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = value * group.get("lr_scale", 1.0)
        return value


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum, AdamW or Adam; no weight decay on biases and norm weights."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
