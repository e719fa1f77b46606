"""What tasks hands to other apps: frozen values, never its read-model rows."""

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskLineage:
    """Where a task version comes from and what it made: its datasets, configuration, model."""

    task_id: uuid.UUID
    version: str
    state: str
    algorithm: str
    config: dict[str, Any]
    train_dataset_id: uuid.UUID
    test_dataset_id: uuid.UUID | None
    model_id: uuid.UUID | None


@dataclass(frozen=True)
class TaskRef:
    """A task version as other apps act on it: whose, on which datasets, billed to which spec."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    project_id: uuid.UUID
    state: str
    train_dataset_id: uuid.UUID
    test_dataset_id: uuid.UUID | None
    spec_id: uuid.UUID
    spec_name: str
    model_id: uuid.UUID | None
