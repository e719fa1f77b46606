"""What other apps may ask of the model registry: a model as a frozen ModelRef, its artifact.

    model = modelregistry.api.get(tenant_id, values["model"])           # 400 on "model"
    folder = modelregistry.api.fetch_artifact(model, Path(tmp))        # ArtifactUnavailable
"""

import copy
import uuid
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import ValidationFailed
from modelregistry import artifacts, formats
from modelregistry.artifacts import ArtifactUnavailable
from modelregistry.contracts import Lineage, ModelRef
from modelregistry.models import TrainedModel

__all__ = ["ArtifactUnavailable", "check_output_path", "fetch_artifact", "get", "get_unscoped",
           "store_artifact", "store_formats"]


def _ref(row: TrainedModel) -> ModelRef:
    return ModelRef(
        id=row.id, tenant_id=row.tenant_id, project_id=row.project_id, task_id=row.task_id,
        version=row.version, scenario=row.scenario, algorithm=row.model_name,
        labels=tuple(row.labels), input_size=tuple(row.input_size),
        artifact_key=row.artifact_key, metrics=MappingProxyType(copy.deepcopy(row.metrics)),
        created_at=row.created_at,
        lineage=Lineage(task_id=row.task_id, train_dataset_id=row.train_dataset_id,
                        test_dataset_id=row.test_dataset_id, origin=row.origin),
        validation_fraction=row.validation_fraction, split_seed=row.split_seed)


def get(tenant_id: object, model_id: object, field: str = "model") -> ModelRef:
    """The tenant's trained model, or a 400 on `field` (another tenant's is not found either)."""
    try:
        pk = uuid.UUID(str(model_id))
    except ValueError:
        raise ValidationFailed("Model not found.", fields={field: ["Model not found."]}) from None
    row = TrainedModel.objects.for_tenant(tenant_id).filter(id=pk).first()
    if row is None:
        raise ValidationFailed("Model not found.", fields={field: ["Model not found."]})
    return _ref(row)


def get_unscoped(model_id: object) -> ModelRef | None:
    """Any tenant's model, for workers that hold its id from their own work; None if none."""
    try:
        pk = uuid.UUID(str(model_id))
    except ValueError:
        return None
    row = TrainedModel.objects.unscoped().filter(id=pk).first()
    return None if row is None else _ref(row)


def fetch_artifact(ref: ModelRef, into: Path) -> Path:
    """The model's artifact folder, downloaded and safely extracted under `into`;
    ArtifactUnavailable (its message says what to do) when missing or unsafe."""
    return artifacts.fetch(ref.artifact_key, into)


def artifact_key(tenant_id: object, model_id: object) -> str:
    """Where the artifact of a new model is stored."""
    return f"models/{tenant_id}/{model_id}.zip"


def store_artifact(folder: Path, tenant_id: object, model_id: object) -> str:
    """Zip an exported artifact folder into storage for a model about to be registered; its
    key, for the event that registers the model."""
    key = artifact_key(tenant_id, model_id)
    artifacts.store(folder, key)
    return key


def store_formats(folder: Path, tenant_id: object, model_id: object,
                  output_path: str = "") -> dict[str, dict[str, Any]]:
    """Store the ONNX/TorchScript files of an exported artifact folder (and copies of every
    format under the task's `output_path`); the model's formats, for the registering event."""
    return formats.store(folder, tenant_id, model_id, output_path)


def check_output_path(tenant_id: object, output_path: str) -> None:
    """A 400 on `output_path` unless it stays inside the tenant's own exports folder."""
    if output_path:
        formats.output_prefix(tenant_id, output_path)
