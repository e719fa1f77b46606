"""What serving hands to other apps: frozen values, never its read-model rows."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelService:
    """A prediction service that serves a trained model now."""

    service_id: uuid.UUID
    model_id: uuid.UUID
    name: str
    state: str
