"""Which events of the tenant's feed a role may read: the resource each event describes,
checked against the role table, so the feed shows no more than the resources themselves.

The REST feed (`GET /api/v1/events/`) and the websocket (backlog and live) both apply it.
Money events are left out whole for roles that may not read the wallet or usage, rather than
sent with their amounts removed: every one of them lives on the wallet stream and is nothing
but money (an amount, a price, a checkout link), so a stripped copy would say nothing useful
while still telling when money moved. Task, evaluation and service events carry a spec's name
and a billing mode but no amount (specs and their prices are public to every role).
"""

from django.db.models import Q

from accounts.roles import ROLES, can

# stream type -> the resource its events describe (a stream type not listed: "event", the
# feed itself, which every member reads).
STREAM_RESOURCES: dict[str, str] = {
    "project": "project",
    "dataset": "dataset",
    "task": "task",
    "task_template": "task",
    "evaluation": "evaluation",
    "service": "service",
    "wallet": "wallet",
}
# Event types that describe another resource than their stream's: the usage meters live on
# the wallet stream (one append moves a freeze and the balance) but are the usage report's.
EVENT_RESOURCES: dict[str, str] = {
    "MeterStarted": "usage",
    "MeterSwitchedToPostpaid": "usage",
    "UsageCharged": "usage",
    "PrepaidHoursConsumed": "usage",
    "MeterStopped": "usage",
}
DEFAULT_RESOURCE = "event"


def resource_of(stream_type: str, event_type: str) -> str:
    """The resource an event describes (its type's own, else its stream's)."""
    return EVENT_RESOURCES.get(event_type) or STREAM_RESOURCES.get(stream_type, DEFAULT_RESOURCE)


def may_read(role: str, stream_type: str, event_type: str) -> bool:
    """Whether `role` may read an event of this stream type and event type."""
    return can(role, "event", "view") and can(role, resource_of(stream_type, event_type), "view")


def hidden_events(role: str) -> Q | None:
    """A filter matching the events `role` may not read (None: it may read them all).

    Applied in the query, so a page of the feed is full of readable events and `next_after`
    keeps its meaning (the last event returned) however many hidden ones lie between.
    """
    if role not in ROLES or not can(role, "event", "view"):
        return Q(pk__isnull=False)  # everything
    hidden_types = [name for name, resource in EVENT_RESOURCES.items()
                    if not can(role, resource, "view")]
    hidden_streams = [name for name, resource in STREAM_RESOURCES.items()
                      if not can(role, resource, "view")]
    condition = Q()
    if hidden_types:
        condition |= Q(type__in=hidden_types)
    if hidden_streams:
        condition |= Q(stream_type__in=hidden_streams) & ~Q(type__in=list(EVENT_RESOURCES))
    return condition or None
