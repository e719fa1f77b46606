"""Which resource billing itself stopped: the owning apps follow MeterStopped (their policies)
and stop the resource when billing stopped its meter short of funds or as vanished."""

from dataclasses import dataclass

from billing.metering import INSUFFICIENT_FUNDS, VANISHED
from billing.models import Meter
from eventlog.store import RecordedEvent

FORCED_REASONS = (INSUFFICIENT_FUNDS, VANISHED)


@dataclass(frozen=True)
class ForcedStop:
    """A resource whose meter billing stopped, and why (insufficient_funds or vanished)."""

    resource_type: str
    resource_id: str
    reason: str


def forced_stop(event: RecordedEvent) -> ForcedStop | None:
    """The resource a MeterStopped event stopped against its owner's will; None otherwise."""
    reason = event.data.get("reason")
    if event.type != "MeterStopped" or reason not in FORCED_REASONS:
        return None
    meter = Meter.objects.for_tenant(event.tenant_id).filter(id=event.data["meter_id"]).first()
    if meter is None:
        return None
    return ForcedStop(meter.resource_type, meter.resource_id, reason)
