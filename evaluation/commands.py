"""State changes of evaluations asked for through the API: create (and queue) one.

Creating an evaluation starts its billing meter in the same transaction (resource type
"evaluation"): when billing refuses (402) nothing is written. The worker side is in
evaluation.runner.
"""

import uuid
from typing import Any

from django.db import transaction

from billing import api as billing
from core import context
from core.errors import ValidationFailed
from core.tenancy import TenantAccess
from evaluation.aggregates import EvaluationAggregate
from evaluation.events import EvaluationCreated, EvaluationQueued
from evaluation.models import Evaluation

RESOURCE_TYPE = "evaluation"
IOU_GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # COCO's 0.50 .. 0.95
DEFAULT_IOU = 0.5
DEFAULT_SCORE_THRESHOLD = 0.5


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


def _model(tenant_id: object, model_id: object) -> Any:
    from tasks.models import TrainedModel

    try:
        pk = uuid.UUID(str(model_id))
    except ValueError:
        raise _invalid("model", "Model not found.") from None
    model = TrainedModel.objects.for_tenant(tenant_id).filter(id=pk).first()
    if model is None:
        raise _invalid("model", "Model not found.")
    return model


def _dataset(tenant_id: object, dataset_id: object, scenario: str) -> Any:
    from datasets import api as datasets

    dataset = datasets.get_usable(tenant_id, dataset_id, field="dataset")
    if dataset.kind != scenario:
        raise _invalid("dataset", f"This is a {dataset.kind} dataset; the model is a "
                                  f"{scenario} model.")
    return dataset


def create_evaluation(access: TenantAccess, values: dict[str, Any]) -> Evaluation:
    """Create an evaluation of a model on a dataset and queue it; 402 (nothing written) if short."""
    tenant_id = access.tenant_id
    model = _model(tenant_id, values.get("model"))
    dataset = _dataset(tenant_id, values.get("dataset"), model.scenario)
    options = {"iou": check_iou(values.get("iou", DEFAULT_IOU)),
               "score_threshold": check_score_threshold(
                   values.get("score_threshold", DEFAULT_SCORE_THRESHOLD))}
    spec = billing.spec(values["spec"]) if values.get("spec") else billing.cheapest_spec("cpu")
    mode = values.get("billing_mode") or billing.POSTPAID
    evaluation_id = uuid.uuid4()
    with transaction.atomic(), context.scope(actor=access.actor):
        meter = billing.start(tenant_id, resource_type=RESOURCE_TYPE, resource_id=evaluation_id,
                              spec=spec, mode=mode, project_id=model.project_id)
        EvaluationAggregate(tenant_id, evaluation_id).append(
            EvaluationCreated(project=str(model.project_id), model=str(model.id),
                              dataset=str(dataset.id), scenario=model.scenario, options=options,
                              spec=str(spec.id), spec_name=spec.name, billing_mode=mode),
            EvaluationQueued(meter_id=str(meter.id)))
        transaction.on_commit(lambda: _enqueue(evaluation_id))
    return Evaluation.objects.for_tenant(tenant_id).get(id=evaluation_id)


def _enqueue(evaluation_id: uuid.UUID) -> None:
    from evaluation.actors import run_evaluation

    run_evaluation.send(str(evaluation_id))
