"""What the loop reports to callbacks; the platform turns these into events.

Step events are built from numbers the loop already has (no extra device syncs, no resource
sampling); resource usage is sampled once per epoch. Throttling is the caller's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

# early_stopped: `early_stopping_patience` epochs without a better metric (the best is kept).
StopReason = Literal["target_reached", "max_duration", "cancelled", "completed", "early_stopped"]


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """Process CPU and resident memory; GPU utilisation and memory when on CUDA, else None."""

    cpu_percent: float
    memory_mb: float
    gpu_util_percent: float | None = None
    gpu_memory_mb: float | None = None


@dataclass(frozen=True, slots=True)
class StepProgress:
    """One optimiser step done.

    `epoch` and `step` are 1-based (step within the epoch); `global_step` counts the steps done so
    far, this one included; `lr` is the learning rate this step used; `eta_s` the estimated time
    to the end of the last epoch.
    """

    epoch: int
    step: int
    global_step: int
    total_steps: int
    loss: float
    lr: float
    samples_per_s: float
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class EpochProgress:
    """One epoch done (1-based), with its mean training loss and validation metrics."""

    epoch: int
    train_loss: float
    metrics: dict[str, float]
    lr: float
    elapsed_s: float
    eta_s: float
    resources: ResourceUsage
    val_loss: float | None = None  # the validation loss, beside train_loss, when measured


@dataclass(frozen=True, slots=True)
class Stopped:
    """The loop ended for `reason` after `epoch` complete epochs."""

    reason: StopReason
    best_metric: float | None
    epoch: int
    partial: bool = False  # the model is the weights of a stop before the first epoch ended


class Callback(Protocol):
    """What the loop calls; a callback may define any subset (missing methods are skipped)."""

    def on_step(self, progress: StepProgress) -> None:
        """After every optimiser step."""

    def on_epoch(self, progress: EpochProgress) -> None:
        """After every epoch's evaluation."""

    def on_checkpoint(self, path: Path) -> None:
        """After a checkpoint file was written (last or best)."""

    def on_stop(self, stopped: Stopped) -> None:
        """Once, when the loop ends without failing."""


def dispatch(callbacks: Iterable[object], method: str, payload: object) -> None:
    """Call `method(payload)` on every callback that has it."""
    for callback in callbacks:
        handler = getattr(callback, method, None)
        if handler is not None:
            handler(payload)
