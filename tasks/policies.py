"""What tasks do when other apps act: billing stopped a task's meter short of funds, so the
worker is asked to stop (it checkpoints; the task restarts after a top-up)."""

import uuid

from billing import api as billing
from eventlog import policies
from eventlog.store import RecordedEvent
from tasks.commands import RESOURCE_TYPE, request_stop
from tasks.models import Task


class StopShortOfFunds(policies.Policy):
    """Follows billing's MeterStopped; a vanished meter is the lease check's business."""

    name = "tasks.stop_short_of_funds"
    event_types = {"MeterStopped"}

    def react(self, event: RecordedEvent) -> None:
        """Ask the task's worker to stop with stop_reason insufficient_funds."""
        stopped = billing.forced_stop(event)
        if (stopped is None or stopped.resource_type != RESOURCE_TYPE
                or stopped.reason != billing.INSUFFICIENT_FUNDS):
            return
        task = Task.objects.for_tenant(event.tenant_id).filter(
            id=uuid.UUID(stopped.resource_id)).first()
        if task is not None:  # an ended task refuses (WrongState): nothing left to do
            request_stop(task.tenant_id, task.id, stopped.reason, "system:billing")


policies.register(StopShortOfFunds())
