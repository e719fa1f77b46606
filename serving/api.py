"""What other apps may ask of serving: the services that serve a tenant's trained model."""

import uuid

from serving.contracts import ModelService
from serving.models import Service


def services_of_model(tenant_id: uuid.UUID | str,
                      model_id: uuid.UUID | str) -> list[ModelService]:
    """The tenant's services whose current model is this one, oldest first, stopped ones too."""
    rows = Service.objects.for_tenant(tenant_id).filter(model_id=model_id).order_by(
        "created_at", "id").values_list("id", "model_id", "name", "state")
    return [ModelService(*row) for row in rows]
