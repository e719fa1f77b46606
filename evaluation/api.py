"""What other apps may ask of evaluation: the evaluations of a tenant's trained model."""

import uuid

from evaluation.contracts import ModelEvaluation
from evaluation.models import Evaluation


def evaluations_of_model(tenant_id: uuid.UUID | str,
                         model_id: uuid.UUID | str) -> list[ModelEvaluation]:
    """The tenant's evaluations of this model, oldest first (another tenant's: none)."""
    rows = Evaluation.objects.for_tenant(tenant_id).filter(model_id=model_id).order_by(
        "created_at", "id").values_list("id", "model_id", "dataset_id", "state")
    return [ModelEvaluation(*row) for row in rows]
