"""What the model registry hands to other apps: frozen values, never its read-model rows."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Lineage:
    """Where a model comes from: the task that trained it and the datasets it used."""

    task_id: uuid.UUID  # an imported model's own id
    train_dataset_id: uuid.UUID | None  # None: imported, trained elsewhere
    test_dataset_id: uuid.UUID | None
    origin: str = "trained"  # or "imported"

    @property
    def dataset_ids(self) -> tuple[uuid.UUID, ...]:
        """The datasets the model was trained and validated on."""
        return tuple(d for d in (self.train_dataset_id, self.test_dataset_id) if d is not None)


@dataclass(frozen=True)
class ModelRef:
    """A trained model as its consumers need it; `validation_fraction` and `split_seed` are
    the train/validation split training made (DatasetIndex.split), to evaluate on the same
    hold-out images."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    project_id: uuid.UUID
    task_id: uuid.UUID
    version: int
    scenario: str
    algorithm: str
    labels: tuple[str, ...]
    input_size: tuple[int, ...]
    artifact_key: str
    metrics: Mapping[str, Any]  # read-only view
    created_at: datetime
    lineage: Lineage
    validation_fraction: float
    split_seed: int

    @property
    def version_label(self) -> str:
        """The task version as the API writes it: V001."""
        return f"V{self.version:03d}"
