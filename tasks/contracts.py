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
