"""Jobs of the event log: catching up projections that do not run inline."""

import dramatiq

from core.broker import CPU_QUEUE
from core.scheduler import periodic
from eventlog import projections


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=3)
def catch_up_projections() -> None:
    """Feed every asynchronous projection the events after its checkpoint."""
    for projection in projections.registered():
        if not projection.inline:
            projections.catch_up(projection)


@periodic(10, name="eventlog.catch_up_projections")
def schedule_catch_up() -> None:
    """Enqueue the catch-up (idempotent: checkpoints make a second run a no-op)."""
    catch_up_projections.send()
