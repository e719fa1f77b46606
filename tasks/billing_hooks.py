"""What tasks do when billing stops their meter: short of funds, the worker is asked to stop."""

import contextlib
import uuid

from billing import api as billing
from tasks.models import Task


@billing.on_forced_stop("task")
def stop_for_lack_of_funds(task_id: str, reason: str) -> None:
    """The worker checkpoints and stops with stop_reason insufficient_funds (restartable after a
    top-up); a vanished meter is the lease check's business."""
    if reason != billing.INSUFFICIENT_FUNDS:
        return
    from core.errors import WrongState
    from tasks.commands import request_stop

    try:
        task = Task.objects.unscoped().filter(id=uuid.UUID(str(task_id))).first()
    except ValueError:  # not a task id: nothing of ours
        return
    if task is None:
        return
    with contextlib.suppress(WrongState):  # it ended meanwhile
        request_stop(task.tenant_id, task.id, reason, "system:billing")
