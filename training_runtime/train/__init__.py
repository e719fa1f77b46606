"""Training: the loop, its config, progress events, stop conditions and checkpoints.

Pure PyTorch; imports nothing from Django (tests/training_runtime/test_train_purity.py).
"""

from training_runtime.train.checkpoint import load_checkpoint, save_checkpoint
from training_runtime.train.config import TrainConfig
from training_runtime.train.events import (
    Callback,
    EpochProgress,
    ResourceUsage,
    StepProgress,
    Stopped,
    StopReason,
)
from training_runtime.train.loop import TrainResult, train
from training_runtime.train.schedule import LRSchedule, build_optimizer, lr_at
from training_runtime.train.steps import classification_accuracy, classification_step
from training_runtime.train.stop import CancelToken, TrainingFailed

__all__ = [
    "Callback", "CancelToken", "EpochProgress", "LRSchedule", "ResourceUsage", "StepProgress",
    "StopReason", "Stopped", "TrainConfig", "TrainResult", "TrainingFailed", "build_optimizer",
    "classification_accuracy", "classification_step", "load_checkpoint", "lr_at",
    "save_checkpoint", "train",
]
