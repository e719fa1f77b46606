"""Training settings: one frozen, validated value the loop reads and checkpoints store."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEDULES = ("cosine", "step")
OPTIMIZERS = ("sgd", "adamw", "adam")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train: epochs, optimiser and schedule, device, stop conditions, where to checkpoint.

    `warmup_epochs` may be fractional (0.5 = half an epoch of linear warmup). `step_size` counts
    epochs. `amp` and `channels_last` apply on CUDA only and are ignored on CPU.
    `target_metric` is "higher is better" on `metrics[metric_name]`. `max_duration_s` counts the
    training time of every run of the same checkpoint chain (resumes included).
    For the first `freeze_backbone_epochs` epochs the parameters named by `frozen_prefixes` (the
    backbone: `models.backbone_prefixes(spec)`) do not train. `early_stopping_patience` ends
    training after that many epochs without a better metric (the best weights are kept).
    """

    checkpoint_dir: Path
    epochs: int = 10
    lr: float = 0.01
    batch_size: int = 32
    warmup_epochs: float = 0.0
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    weight_decay: float = 0.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    channels_last: bool = False
    max_duration_s: float | None = None
    target_metric: float | None = None
    metric_name: str = "accuracy"
    num_workers: int = 0
    persistent_workers: bool = False
    freeze_backbone_epochs: int = 0
    frozen_prefixes: tuple[str, ...] = ()
    early_stopping_patience: int | None = None

    def __post_init__(self) -> None:
        """Normalise the checkpoint folder to a Path and reject invalid values."""
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        if isinstance(self.frozen_prefixes, list):  # as a checkpoint's config stores it
            object.__setattr__(self, "frozen_prefixes", tuple(self.frozen_prefixes))
        _validate(self)

    @property
    def is_cuda(self) -> bool:
        """Whether the device is a CUDA device."""
        return self.device.startswith("cuda")

    @property
    def use_amp(self) -> bool:
        """Mixed precision is on: asked for and on CUDA."""
        return self.amp and self.is_cuda

    @property
    def use_channels_last(self) -> bool:
        """channels_last memory format is on: asked for and on CUDA."""
        return self.channels_last and self.is_cuda

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (the folder as a string), safe for a weights_only checkpoint."""
        values = dataclasses.asdict(self)
        values["checkpoint_dir"] = str(self.checkpoint_dir)
        values["frozen_prefixes"] = list(self.frozen_prefixes)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """The config `to_dict` wrote."""
        return cls(**values)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _validate(c: TrainConfig) -> None:
    _require(_is_int(c.epochs) and c.epochs >= 1,
             f"epochs must be an integer >= 1, got {c.epochs!r}")
    _require(_is_number(c.lr) and c.lr > 0, f"lr must be a finite number > 0, got {c.lr!r}")
    _require(_is_int(c.batch_size) and c.batch_size >= 1,
             f"batch_size must be an integer >= 1, got {c.batch_size!r}")
    _require(_is_number(c.warmup_epochs) and 0 <= c.warmup_epochs <= c.epochs,
             f"warmup_epochs must be between 0 and epochs ({c.epochs}), got {c.warmup_epochs!r}")
    _require(c.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {c.schedule!r}")
    _require(_is_int(c.step_size) and c.step_size >= 1,
             f"step_size (epochs) must be an integer >= 1, got {c.step_size!r}")
    _require(_is_number(c.gamma) and 0 < c.gamma <= 1, f"gamma must be in (0, 1], got {c.gamma!r}")
    _require(_is_number(c.weight_decay) and c.weight_decay >= 0,
             f"weight_decay must be >= 0, got {c.weight_decay!r}")
    _require(c.optimizer in OPTIMIZERS,
             f"optimizer must be one of {OPTIMIZERS}, got {c.optimizer!r}")
    _require(_is_number(c.momentum) and 0 <= c.momentum < 1,
             f"momentum must be in [0, 1), got {c.momentum!r}")
    _require(_is_int(c.seed) and 0 <= c.seed < 2**32, f"seed must be in [0, 2**32), got {c.seed!r}")
    _require(isinstance(c.device, str) and bool(_DEVICE.match(c.device)),
             f"device must be 'cpu', 'cuda' or 'cuda:N', got {c.device!r}")
    _require(isinstance(c.amp, bool), f"amp must be a bool, got {c.amp!r}")
    _require(isinstance(c.channels_last, bool),
             f"channels_last must be a bool, got {c.channels_last!r}")
    _require(c.max_duration_s is None or (_is_number(c.max_duration_s) and c.max_duration_s > 0),
             f"max_duration_s must be None or a number > 0, got {c.max_duration_s!r}")
    _require(c.target_metric is None or _is_number(c.target_metric),
             f"target_metric must be None or a finite number, got {c.target_metric!r}")
    _require(isinstance(c.metric_name, str) and bool(c.metric_name),
             f"metric_name must be a non-empty string, got {c.metric_name!r}")
    _require(_is_int(c.num_workers) and c.num_workers >= 0,
             f"num_workers must be an integer >= 0, got {c.num_workers!r}")
    _require(isinstance(c.persistent_workers, bool),
             f"persistent_workers must be a bool, got {c.persistent_workers!r}")
    _require(_is_int(c.freeze_backbone_epochs) and 0 <= c.freeze_backbone_epochs < c.epochs,
             f"freeze_backbone_epochs must be an integer from 0 to epochs - 1 ({c.epochs - 1}), "
             f"got {c.freeze_backbone_epochs!r}")
    _require(isinstance(c.frozen_prefixes, tuple)
             and all(isinstance(p, str) and p for p in c.frozen_prefixes),
             f"frozen_prefixes must be a tuple of parameter-name prefixes, got "
             f"{c.frozen_prefixes!r}")
    _require(c.freeze_backbone_epochs == 0 or bool(c.frozen_prefixes),
             "freeze_backbone_epochs needs frozen_prefixes (which parameters are the backbone)")
    _require(c.early_stopping_patience is None
             or (_is_int(c.early_stopping_patience) and c.early_stopping_patience >= 1),
             f"early_stopping_patience must be None or an integer >= 1, got "
             f"{c.early_stopping_patience!r}")
