"""What other apps may ask of tasks: a task as a frozen value, whether it exists, its lineage.

Trained models are the model registry's (modelregistry.api).
"""

import uuid

from tasks.contracts import TaskLineage, TaskRef
from tasks.models import Task


def task(tenant_id: object, task_id: object) -> TaskRef | None:
    """The tenant's task, or None."""
    row = Task.objects.for_tenant(tenant_id).filter(id=task_id).first()
    if row is None:
        return None
    return TaskRef(id=row.id, tenant_id=row.tenant_id, project_id=row.project_id,
                   state=row.state, train_dataset_id=row.train_dataset_id,
                   test_dataset_id=row.test_dataset_id, spec_id=row.spec_id,
                   spec_name=row.spec_name, model_id=row.model_id)


def task_exists(tenant_id: object, task_id: object) -> bool:
    """Whether the tenant has this task (another tenant's does not count)."""
    return Task.objects.for_tenant(tenant_id).filter(id=task_id).exists()


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
