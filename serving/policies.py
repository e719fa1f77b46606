"""What services do when other apps act: billing stopped a service's meter (out of funds, or
vanished), so its instances leave."""

import uuid

from billing import api as billing
from eventlog import policies
from eventlog.store import RecordedEvent
from serving.commands import RESOURCE_TYPE, request_stop
from serving.models import Service


class StopWhenBillingStops(policies.Policy):
    """Follows billing's MeterStopped; the stop reason says why (insufficient_funds, lost)."""

    name = "serving.stop_when_billing_stops"
    event_types = {"MeterStopped"}

    def react(self, event: RecordedEvent) -> None:
        """Stop the service; one already stopping or ended is left as it is."""
        stopped = billing.forced_stop(event)
        if stopped is None or stopped.resource_type != RESOURCE_TYPE:
            return
        row = Service.objects.for_tenant(event.tenant_id).filter(
            id=uuid.UUID(stopped.resource_id)).first()
        if row is not None:
            why = "lost" if stopped.reason == billing.VANISHED else stopped.reason
            request_stop(row.tenant_id, row.id, why, "system:billing")


policies.register(StopWhenBillingStops())
