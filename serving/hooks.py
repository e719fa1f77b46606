"""What services do when billing stops their meter: out of funds or vanished, they stop."""

import contextlib
import uuid

from billing import api as billing
from core.errors import NotFound
from serving.commands import RESOURCE_TYPE, request_stop
from serving.models import Service


@billing.on_forced_stop(RESOURCE_TYPE)
def stop_when_billing_stops(service_id: str, reason: str) -> None:
    """The instances leave; the stop reason says why (insufficient_funds, or lost)."""
    with contextlib.suppress(ValueError, NotFound):
        row = Service.objects.unscoped().filter(id=uuid.UUID(str(service_id))).first()
        if row is not None:
            why = "lost" if reason == billing.VANISHED else reason
            request_stop(row.tenant_id, row.id, why, "system:billing")
