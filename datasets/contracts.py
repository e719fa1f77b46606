"""What datasets hands to other apps: frozen values, never its read-model rows."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetRef:
    """One dataset version as other apps use it: what it is, whether it is usable, where its
    zip is stored (for datasets.api.materialize)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    project_id: uuid.UUID | None
    name: str
    kind: str
    format: str
    version: int
    state: str
    storage_key: str
    label_names: tuple[str, ...]  # in the read model's order
    image_count: int
    builtin: bool
    archived: bool
