"""What other apps may ask of tasks: the tenant's trained models, a task's lineage."""

import uuid

from core.errors import ValidationFailed
from tasks.contracts import TaskLineage
from tasks.models import Task, TrainedModel


def trained_model(tenant_id: object, model_id: object, field: str = "model") -> TrainedModel:
    """The tenant's trained model, or a 400 on `field` (another tenant's is not found either)."""
    try:
        pk = uuid.UUID(str(model_id))
    except ValueError:
        raise ValidationFailed("Model not found.", fields={field: ["Model not found."]}) from None
    model = TrainedModel.objects.for_tenant(tenant_id).filter(id=pk).first()
    if model is None:
        raise ValidationFailed("Model not found.", fields={field: ["Model not found."]})
    return model


def task(tenant_id: object, task_id: object) -> Task | None:
    """The tenant's task, or None."""
    return Task.objects.for_tenant(tenant_id).filter(id=task_id).first()


def task_lineage(tenant_id: uuid.UUID | str, task_id: uuid.UUID | str) -> TaskLineage | None:
    """The tenant's task version with its datasets, configuration and model; None when the
    tenant has no such task."""
    task = Task.objects.for_tenant(tenant_id).filter(id=task_id).first()
    if task is None:
        return None
    return TaskLineage(
        task_id=task.id, version=task.version_label, state=task.state,
        algorithm=task.model_name, config=dict(task.config),
        train_dataset_id=task.train_dataset_id, test_dataset_id=task.test_dataset_id,
        model_id=task.model_id)
