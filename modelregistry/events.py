"""Events of the model stream (stream type "model", stream id = the model id)."""

from dataclasses import dataclass, field
from typing import Any

from eventlog.schema import event


@event("ModelImported")
@dataclass(frozen=True)
class ModelImported:
    """A model trained elsewhere, checked and re-exported by the platform (lineage imported)."""

    project: str
    name: str
    scenario: str
    algorithm: str
    labels: list[str]
    input_size: list[int]
    artifact_key: str
    formats: dict[str, Any] = field(default_factory=dict)
