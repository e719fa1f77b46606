"""What other apps call to bill compute (tasks, evaluations, services); nothing else of billing
is theirs to import.

    meter = billing.api.start(tenant_id, resource_type="task", resource_id=task.id,
                              spec=billing.api.spec(spec_id), mode="postpaid",
                              project_id=task.project_id)      # 402 InsufficientFunds if short
    billing.api.heartbeat(meter.id)                             # while it runs
    billing.api.stop_resource(tenant_id, "task", task.id, reason="completed")

    stopped = billing.api.forced_stop(event)    # in the app's policy following MeterStopped:
                                                # billing stopped it itself (insufficient_funds,
                                                # vanished); None when its owner stopped it

Settlement runs every BILLING_SETTLE_INTERVAL_S in the scheduler (billing.actors).
"""

import uuid

from billing.forced_stops import ForcedStop, forced_stop
from billing.metering import (
    INSUFFICIENT_FUNDS,
    MODES,
    POSTPAID,
    PREPAID,
    VANISHED,
    heartbeat,
    settle,
    settle_running,
    start,
    stop,
    stop_resource,
)
from billing.models import ComputeSpec, Meter
from core.errors import ValidationFailed

__all__ = ["INSUFFICIENT_FUNDS", "MODES", "POSTPAID", "PREPAID", "VANISHED", "ForcedStop",
           "Meter", "cheapest_spec", "forced_stop", "heartbeat", "settle", "settle_running", "spec",
           "start", "stop", "stop_resource"]


def cheapest_spec(kind: str, field: str = "spec") -> ComputeSpec:
    """The cheapest offered spec of `kind` ("cpu" or "gpu"); a clear 400 on `field` if none."""
    found = ComputeSpec.objects.filter(active=True, kind=kind).order_by(
        "price_per_hour", "name").first()
    if found is None:
        raise ValidationFailed(f"No {kind} spec is offered; name a spec (see "
                               "/api/v1/billing/specs/).", fields={field: ["No spec offered."]})
    return found


def spec(spec_id: object, field: str = "spec") -> ComputeSpec:
    """An offered spec by id or name; a clear 400 on `field` otherwise."""
    specs = ComputeSpec.objects.filter(active=True)
    try:
        found = specs.filter(id=uuid.UUID(str(spec_id))).first()
    except ValueError:  # not a UUID: it may be the spec's name
        found = None
    if found is None:
        found = specs.filter(name=str(spec_id)).first()
    if found is None:
        raise ValidationFailed(f"No offered compute spec is {spec_id!r}; see "
                               "/api/v1/billing/specs/.", fields={field: ["Unknown spec."]})
    return found
