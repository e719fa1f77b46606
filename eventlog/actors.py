"""Jobs of the event log: catching up projections that do not run inline, following policies."""

import dramatiq
from django.conf import settings

from core.broker import CPU_QUEUE
from core.scheduler import periodic
from eventlog import lag, policies, projections


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=3)
def catch_up_projections() -> None:
    """Feed every asynchronous projection the events after its checkpoint."""
    for projection in projections.registered():
        if not projection.inline:
            lag.observe(projection)  # how far behind it was when this pass began
            projections.catch_up(projection)


@periodic(10, name="eventlog.catch_up_projections")
def schedule_catch_up() -> None:
    """Enqueue the catch-up (idempotent: checkpoints make a second run a no-op)."""
    catch_up_projections.send()


@periodic(settings.EVENTS_POLL_INTERVAL_S, name="eventlog.follow_policies")
def follow_policies() -> None:
    """React to new events in the scheduler itself: one follower per deployment, in log order
    (a second one, should it run, waits for the checkpoint's row lock)."""
    if settings.EVENTLOG_POLICIES:
        policies.follow_all()
