"""Tasks found again after a crash: queued ones whose message may be lost are sent again;
running ones whose worker died with the process are interrupted (and retried) at once."""

from django.conf import settings

from core import recovery
from tasks.interruptions import interrupt_lost_attempts
from tasks.models import Task


@recovery.recoverer("tasks")
def recover_tasks(sweep: recovery.Sweep) -> int:
    """Send queued attempts again (a duplicate finds its attempt claimed and does nothing);
    how many were sent. The freeze was made when the task was queued: sending is free."""
    from tasks.actors import train_task

    if sweep.lost_all:  # every running attempt's worker was this process's
        interrupt_lost_attempts(sweep.stale_before(settings.TASK_LEASE_TIMEOUT_S))
    sent = 0
    queued = Task.objects.unscoped().filter(state="queued").values_list(
        "id", "attempt", "updated_at")
    for task_id, attempt, since in queued:
        if sweep.due(f"task:{task_id}:{attempt}", since):
            train_task.send(str(task_id), attempt)
            sent += 1
    return sent
