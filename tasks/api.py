"""What other apps may ask of tasks: the tenant's trained models."""

import uuid

from core.errors import ValidationFailed
from tasks.models import TrainedModel


def trained_model(tenant_id: object, model_id: object, field: str = "model") -> TrainedModel:
    """The tenant's trained model, or a 400 on `field` (another tenant's is not found either)."""
    try:
        pk = uuid.UUID(str(model_id))
    except ValueError:
        raise ValidationFailed("Model not found.", fields={field: ["Model not found."]}) from None
    model = TrainedModel.objects.for_tenant(tenant_id).filter(id=pk).first()
    if model is None:
        raise ValidationFailed("Model not found.", fields={field: ["Model not found."]})
    return model
