"""State changes of evaluations: create (and queue) one, evaluate a task's model after
training, stop one.

Creating an evaluation starts its billing meter in the same transaction (resource type
"evaluation"): when billing refuses (402) nothing is written. The automatic evaluation after
training is part of the training task's bill (billing_mode "included", no meter). A validation
task (E11) is an evaluation with validation settings: per-label confidences, low-overlap IoU,
device, batch size and image size. The worker side is in evaluation.runner.
"""

import uuid
from typing import Any

from django.db import transaction

from billing import api as billing
from core import context
from core.broker import CPU_QUEUE, GPU_QUEUE
from core.errors import ValidationFailed
from core.tenancy import TenantAccess
from core.work import Work
from evaluation.aggregates import EvaluationAggregate
from evaluation.events import EvaluationCreated, EvaluationQueued, EvaluationStopped
from evaluation.models import Evaluation
from eventlog.aggregates import retry_on_conflict
from modelregistry import api as modelregistry
from modelregistry.contracts import ModelRef

RESOURCE_TYPE = "evaluation"
IOU_GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # COCO's 0.50 .. 0.95
DEFAULT_IOU = 0.5
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_LOW_OVERLAP_IOU = 0.1
INCLUDED = "included"  # billed with the training task
DEVICES = ("cpu", "gpu")
# Declared in evaluation.actors: a run on the CPU queue, or on a GPU worker when asked for.
RUN = {"cpu": Work("run_evaluation", CPU_QUEUE), "gpu": Work("run_evaluation_on_gpu", GPU_QUEUE)}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def check_iou(value: float, field: str = "iou") -> float:
    """An IoU on COCO's grid (0.50 to 0.95 in steps of 0.05), or a 400 on `field`."""
    for grid_value in IOU_GRID:
        if abs(float(value) - grid_value) < 1e-6:
            return grid_value
    raise _invalid(field, "IoU must be one of " + ", ".join(f"{v:.2f}" for v in IOU_GRID) + ".")


def check_score_threshold(value: float, field: str = "score_threshold") -> float:
    """A score threshold in [0, 1], or a 400 on `field`."""
    if not 0.0 <= float(value) <= 1.0:
        raise _invalid(field, "The score threshold must be between 0 and 1.")
    return float(value)


def _dataset(tenant_id: object, dataset_id: object, scenario: str) -> Any:
    from datasets import api as datasets

    dataset = datasets.get_usable(tenant_id, dataset_id, field="dataset")
    if dataset.kind != scenario:
        raise _invalid("dataset", f"This is a {dataset.kind} dataset; the model is a "
                                  f"{scenario} model.")
    return dataset


def _sample_rule(model: ModelRef, dataset: Any) -> None:
    """A model trained on a built-in sample evaluates on that sample only (as its task does)."""
    from datasets import api as datasets

    trained_on = datasets.get_unscoped(model.lineage.train_dataset_id)
    if trained_on is not None and trained_on.builtin and dataset.id != trained_on.id:
        raise _invalid("dataset", "This model was trained on a built-in sample dataset; it "
                                  "evaluates on that sample only, not on another test set.")


def check_score_thresholds(values: Any, base: float, labels: list[str]) -> dict[str, float]:
    """Per-label confidences: known labels, each in [base, 1]; a 400 naming the label."""
    if values in (None, {}):
        return {}
    if not isinstance(values, dict):
        raise _invalid("score_thresholds", "score_thresholds maps labels to confidences.")
    checked = {}
    for label, value in values.items():
        if label not in labels:
            raise _invalid("score_thresholds", f"The model has no label {label!r}.")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid("score_thresholds", f"The confidence of {label!r} must be a number.")
        if not base <= float(value) <= 1.0:
            raise _invalid("score_thresholds",
                           f"The confidence of {label!r} ({value}) must be at least the base "
                           f"confidence ({base}) and at most 1.")
        checked[label] = float(value)
    return checked


def _options(values: dict[str, Any], model: Any) -> dict[str, Any]:
    iou = check_iou(values.get("iou", DEFAULT_IOU))
    base = check_score_threshold(values.get("score_threshold", DEFAULT_SCORE_THRESHOLD))
    options: dict[str, Any] = {"iou": iou, "score_threshold": base}
    thresholds = check_score_thresholds(values.get("score_thresholds"), base, list(model.labels))
    if thresholds:
        options["score_thresholds"] = thresholds
    low = float(values.get("low_overlap_iou", DEFAULT_LOW_OVERLAP_IOU))
    if not 0.0 < low <= iou:
        raise _invalid("low_overlap_iou", f"The low-overlap IoU must be above 0 and at most the "
                                          f"IoU threshold ({iou}).")
    options["low_overlap_iou"] = low
    for name in ("batch_size", "image_size"):
        if values.get(name) is not None:
            options[name] = int(values[name])
    return options


def _spec(values: dict[str, Any]) -> Any:
    device = values.get("device")
    if not values.get("spec"):
        return billing.cheapest_spec("gpu" if device == "gpu" else "cpu",
                                     field="device" if device else "spec")
    spec = billing.spec(values["spec"])
    if device is not None and spec.kind != device:
        raise _invalid("device", f"The spec {spec.name} is a {spec.kind} spec, not {device}.")
    return spec


def create_evaluation(access: TenantAccess, values: dict[str, Any]) -> Evaluation:
    """Create an evaluation of a model on a dataset and queue it; 402 (nothing written) if short."""
    tenant_id = access.tenant_id
    model = modelregistry.get(tenant_id, values.get("model"))
    dataset = _dataset(tenant_id, values.get("dataset"), model.scenario)
    _sample_rule(model, dataset)
    options = _options(values, model)
    spec = _spec(values)
    options["device"] = spec.kind
    mode = values.get("billing_mode") or billing.POSTPAID
    evaluation_id = uuid.uuid4()
    with transaction.atomic(), context.scope(actor=access.actor):
        meter = billing.start(tenant_id, resource_type=RESOURCE_TYPE, resource_id=evaluation_id,
                              spec=spec, mode=mode, project_id=model.project_id)
        EvaluationAggregate(tenant_id, evaluation_id).append(
            EvaluationCreated(project=str(model.project_id), model=str(model.id),
                              dataset=str(dataset.id), scenario=model.scenario, options=options,
                              spec=str(spec.id), spec_name=spec.name, billing_mode=mode,
                              task=str(model.task_id)),
            EvaluationQueued(meter_id=str(meter.id)))
        enqueue_on_commit(evaluation_id, spec.kind)
    return Evaluation.objects.for_tenant(tenant_id).get(id=evaluation_id)


def evaluate_after_training(task: Any, model_id: object) -> uuid.UUID | None:
    """Queue the automatic evaluation of a task's new model (`task`: a tasks.contracts.TaskRef)
    on its test set, or else on the hold-out split its training validated on. Part of the
    task's bill."""
    model = modelregistry.get_unscoped(model_id)
    if model is None or model.tenant_id != task.tenant_id:
        return None
    if Evaluation.objects.for_tenant(task.tenant_id).filter(
            model_id=model.id, billing_mode=INCLUDED).exists():
        return None  # a redelivered success: already evaluated
    options: dict[str, Any] = {"iou": DEFAULT_IOU, "score_threshold": DEFAULT_SCORE_THRESHOLD,
                               "low_overlap_iou": DEFAULT_LOW_OVERLAP_IOU, "automatic": True,
                               "device": "cpu"}
    if model.lineage.test_dataset_id:
        dataset_id = model.lineage.test_dataset_id
    else:  # the runner splits as the model's training did (ModelRef.split_seed, fraction)
        dataset_id = model.lineage.train_dataset_id
        options.update(split="holdout", seed=model.split_seed)
    evaluation_id = uuid.uuid4()
    with transaction.atomic(), context.scope(actor="system:training"):
        EvaluationAggregate(task.tenant_id, evaluation_id).append(
            EvaluationCreated(project=str(model.project_id), model=str(model.id),
                              dataset=str(dataset_id), scenario=model.scenario, options=options,
                              spec=str(task.spec_id), spec_name=task.spec_name,
                              billing_mode=INCLUDED, task=str(task.id)),
            EvaluationQueued(meter_id=""))
        enqueue_on_commit(evaluation_id, "cpu")
    return evaluation_id


def stop_evaluation(tenant_id: object, evaluation_id: object, reason: str) -> bool:
    """Stop a queued or running evaluation (its worker notices at its next batch); False when
    it had already ended; run again from the new head when the worker reported first)."""

    def stop() -> bool:
        aggregate = EvaluationAggregate.load(tenant_id, evaluation_id)
        if aggregate.state not in ("queued", "running"):
            return False
        aggregate.append(EvaluationStopped(reason=reason))
        billing.stop_resource(tenant_id, RESOURCE_TYPE, evaluation_id, reason=reason)
        return True

    return retry_on_conflict(stop)


def enqueue(evaluation_id: uuid.UUID | str, device: str) -> None:
    """Send the run to a worker of its device's queue."""
    RUN["gpu" if device == "gpu" else "cpu"].send(str(evaluation_id))


def enqueue_on_commit(evaluation_id: uuid.UUID | str, device: str) -> None:
    """Send the run once the transaction that queued it commits."""
    transaction.on_commit(lambda: enqueue(evaluation_id, device))
