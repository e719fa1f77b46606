"""One call from an extracted dataset to a trained, exported model: what a worker runs.

    job = TrainingJob(scenario="classification", model_name="small_cnn",
                      train_root=Path("digits"), data_format="folders", work_dir=Path("run"))
    outcome = run_job(job, callbacks=[...], cancel=token)
    outcome.result.stop_reason, outcome.artifact_path, outcome.labels

The job reads and validates the data, holds out a deterministic validation split when no test
set is given (T10), builds the registry's model, trains it with `train()` (resuming from
`work_dir/checkpoints/last.pt` when one is there, so a retried job continues), and exports the
best checkpoint as an artifact. Hyperparameters left as None take the model's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_runtime.data import read_dataset
from training_runtime.data.dataset import DatasetIndex, Sample

SMALL_DATA_IMAGES = 100


class JobDataError(ValueError):
    """The job's data cannot be trained on; `errors` are the validation report's."""

    code = "invalid_dataset"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


@dataclass(frozen=True)
class TrainingJob:
    """What to train, on which data, where to write, and the task's hyperparameters."""

    scenario: str
    model_name: str | None
    train_root: Path
    data_format: str
    work_dir: Path
    test_root: Path | None = None
    test_format: str | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    warmup_epochs: float | None = None
    target_metric: float | None = None
    max_duration_s: float | None = None
    seed: int = 0  # of the train/validation split and of the training
    validation_fraction: float = 0.2  # held out when there is no test set
    device: str = "cpu"
    pretrained: str | None = None
    input_size: tuple[int, int] | None = None
    num_workers: int = 0
    build_options: dict[str, Any] = field(default_factory=dict)
    # The task's options (training_runtime.options.resolve_options); `pretrained` above is the
    # weights file they resolved to (WeightStore.path_for), built with a new head.
    augmentation: str | None = None  # none|light|strong; None: light
    optimizer: str | None = None  # None: the model's default
    freeze_backbone_epochs: int = 0
    early_stopping_patience: int | None = None
    mixed_precision: bool = True  # on CUDA only
    persistent_workers: bool = False
    portable: bool = True  # also export ONNX and TorchScript files (export/formats.py)


@dataclass(frozen=True)
class JobOutcome:
    """The training result, the exported artifact (None if no epoch finished) and the data."""

    result: Any  # training_runtime.train.TrainResult
    artifact_path: Path | None
    labels: list[str]
    model_name: str
    metric_name: str
    input_size: tuple[int, int]
    validation: str  # "test_set" | "holdout"
    warnings: list[str]
    partial: bool = False  # the model is from a stop before the first epoch ended


def _read(root: Path, scenario: str, fmt: str, what: str) -> DatasetIndex:
    index, report = read_dataset(root, scenario, fmt)
    if index is None:
        errors = report.as_dict()["errors"]
        first = errors[0]["message"] if errors else "no readable images"
        raise JobDataError(f"The {what} dataset is not valid ({len(errors)} errors; first: "
                           f"{first}).", errors)
    return index


def _test_samples(job: TrainingJob, labels: list[str]) -> tuple[DatasetIndex, list[Sample]]:
    assert job.test_root is not None
    index = _read(job.test_root, job.scenario, job.test_format or job.data_format, "test")
    unknown = sorted(set(index.labels) - set(labels))
    if unknown:
        raise JobDataError(f"The test dataset has labels the training data lacks: "
                           f"{', '.join(unknown[:5])}; use the same label set.")
    return index, index.samples


def run_job(job: TrainingJob, *, callbacks: Iterable[object] = (), cancel: Any = None,
            resume: bool = True) -> JobOutcome:
    """Read, split, build, train (or resume) and export; TrainingFailed/JobDataError on failure."""
    from training_runtime.data import TorchDataset, eval_transforms, train_transforms
    from training_runtime.data.torch_dataset import detection_collate
    from training_runtime.export.artifact import export_checkpoint
    from training_runtime.models import build, get
    from training_runtime.train import TrainConfig, train
    from training_runtime.train.detection import detection_evaluator, detection_step
    from training_runtime.weights import build_from_weights

    spec = get(job.scenario, job.model_name)
    index = _read(job.train_root, job.scenario, job.data_format, "training")
    warnings: list[str] = []
    if job.test_root is not None:
        test_index, val_samples = _test_samples(job, index.labels)
        train_samples, validation = index.samples, "test_set"
        if test_index.labels != index.labels:  # same names, maybe another order: remap
            val_samples = _remap(val_samples, test_index.labels, index.labels)
        val_index = DatasetIndex(test_index.root, test_index.scenario, index.labels, val_samples)
    else:
        train_samples, val_samples = index.split(job.validation_fraction, seed=job.seed)
        val_index, validation = index, "holdout"
    if index.image_count < SMALL_DATA_IMAGES:
        warnings.append(f"Only {index.image_count} images: the metrics are for reference only.")

    defaults = spec.defaults
    size = job.input_size or spec.input_size
    epochs = job.epochs or defaults.epochs
    warmup = job.warmup_epochs if job.warmup_epochs is not None else min(
        defaults.warmup_epochs, max(0, epochs - 1))
    config = TrainConfig(
        checkpoint_dir=job.work_dir / "checkpoints", epochs=epochs, lr=job.lr or defaults.lr,
        batch_size=job.batch_size or defaults.batch_size, warmup_epochs=warmup,
        schedule=defaults.schedule, weight_decay=defaults.weight_decay,
        optimizer=job.optimizer or defaults.optimizer, seed=job.seed, device=job.device,
        amp=job.mixed_precision and job.device.startswith("cuda"),
        channels_last=job.device.startswith("cuda"),
        max_duration_s=job.max_duration_s, target_metric=job.target_metric,
        metric_name=spec.metric, num_workers=job.num_workers,
        persistent_workers=job.persistent_workers,
        freeze_backbone_epochs=job.freeze_backbone_epochs,
        frozen_prefixes=spec.backbone_prefixes if job.freeze_backbone_epochs else (),
        early_stopping_patience=job.early_stopping_patience)
    labels = list(index.labels)
    if job.pretrained is not None:
        model = build_from_weights(spec, len(labels), job.pretrained, **job.build_options)
    else:
        model = build(spec, len(labels), **job.build_options)
    train_set = TorchDataset(index, train_samples,
                             train_transforms(job.scenario, size, augmentation=job.augmentation))
    val_set = TorchDataset(val_index, val_samples, eval_transforms(job.scenario, size))
    extra: dict[str, Any] = {}
    if job.scenario != "classification":
        iou_type = "segm" if job.scenario == "segmentation" else "bbox"
        extra = {"step_fn": detection_step, "evaluate_fn": detection_evaluator(iou_type),
                 "collate_fn": detection_collate}
    last = config.checkpoint_dir / "last.pt"
    result = train(model, train_set, val_set, config, callbacks=callbacks, cancel=cancel,
                   resume_from=last if resume and last.exists() else None, **extra)

    artifact = None
    if result.best_checkpoint_path is not None:
        artifact = export_checkpoint(
            result.best_checkpoint_path, job.work_dir / "artifact", scenario=job.scenario,
            model_name=spec.name, labels=labels, input_size=size,
            normalization=_normalization(job.scenario), build_options=job.build_options,
            metrics={"validation": validation, **({"partial": True} if result.partial else {})},
            overwrite=True, portable=job.portable)
    if result.partial:
        warnings.append(f"Stopped ({result.stop_reason}) before the first epoch ended: the model "
                        f"holds the weights after {result.global_step} steps (partial).")
    return JobOutcome(result, artifact, labels, spec.name, spec.metric, tuple(size), validation,
                      warnings, partial=result.partial)


def _remap(samples: list[Sample], source: list[str], target: list[str]) -> list[Sample]:
    """Samples whose label indices point into `source` re-pointed into `target` (same names)."""
    import dataclasses

    position = {name: target.index(name) for name in source}
    remapped = []
    for sample in samples:
        changes: dict[str, Any] = {}
        if sample.label is not None:
            changes["label"] = position[source[sample.label]]
        if sample.box_labels:
            changes["box_labels"] = type(sample.box_labels)(
                position[source[i]] for i in sample.box_labels)
        remapped.append(dataclasses.replace(sample, **changes) if changes else sample)
    return remapped


def _normalization(scenario: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    from training_runtime.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    return (IMAGENET_MEAN, IMAGENET_STD) if scenario == "classification" else None
