"""What evaluation hands to other apps: frozen values, never its read-model rows."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEvaluation:
    """One evaluation run of a trained model: on which dataset, and how far it got."""

    evaluation_id: uuid.UUID
    model_id: uuid.UUID
    dataset_id: uuid.UUID
    state: str
