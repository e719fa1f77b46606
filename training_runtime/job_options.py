"""A task's effective options and its compute spec as `TrainingJob` keyword arguments.

    effective, errors = resolve_options(task_options, catalogue.get(scenario, model))
    job = TrainingJob(..., **job_arguments(effective, model_name=..., weights_root=...,
                                           cores=spec_cores, device=device))

One place turns what the task recorded into how the worker trains: the pretrained choice into a
file of the weight store, the spec's cores into loader workers and torch threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training_runtime.train.loading import LoadingPlan, apply_threads, plan_loading
from training_runtime.weights import WeightStore, pretrained_path


def job_arguments(effective: dict[str, Any], *, model_name: str,
                  weights_root: str | Path | None, cores: int, device: str,
                  set_threads: bool = True) -> dict[str, Any]:
    """TrainingJob fields for `effective` options (resolve_options) on `cores` and `device`.

    Raises weights.WeightsNotFound when the pretrained weights are not installed. With
    `set_threads`, this process's torch threads are set to the loading plan's.
    """
    choice = effective.get("pretrained", False)
    if choice is not False and weights_root is None:
        raise ValueError("pretrained weights were chosen but no weight store is configured")
    weights = (pretrained_path(WeightStore(weights_root), model_name, choice)
               if choice is not False and weights_root is not None else None)
    plan: LoadingPlan = plan_loading(cores, device,
                                     mixed_precision=effective.get("mixed_precision", True))
    if set_threads:
        apply_threads(plan)
    size = effective.get("image_size")
    return {
        "input_size": tuple(size) if size else None,
        "augmentation": effective.get("augmentation"),
        "optimizer": effective.get("optimizer"),
        "freeze_backbone_epochs": effective.get("freeze_backbone_epochs", 0),
        "early_stopping_patience": effective.get("early_stopping_patience"),
        "mixed_precision": effective.get("mixed_precision", True),
        "seed": effective.get("seed", 0),
        "pretrained": str(weights) if weights is not None else None,
        "num_workers": plan.num_workers,
        "persistent_workers": plan.persistent_workers,
    }
