"""Tasks found again after a crash: queued ones whose message may be lost are sent again;
running ones whose worker died with the process are interrupted (and retried) at once."""

import logging

from django.conf import settings

from billing import api as billing
from core import context, recovery
from core.errors import ApiError
from eventlog.aggregates import retry_on_conflict
from tasks.aggregates import TaskAggregate
from tasks.commands import RESOURCE_TYPE, TRAIN, enqueue_on_commit
from tasks.events import TaskQueued, TaskStopped
from tasks.interruptions import interrupt_lost_attempts
from tasks.models import Task

log = logging.getLogger(__name__)


@recovery.recoverer("tasks")
def recover_tasks(sweep: recovery.Sweep) -> int:
    """Send queued attempts again (a duplicate finds its attempt claimed and does nothing);
    how many were sent. The freeze was made when the task was queued: sending is free."""
    if sweep.lost_all:  # every running attempt's worker was this process's
        interrupt_lost_attempts(sweep.stale_before(settings.TASK_LEASE_TIMEOUT_S))
    sent = 0
    queued = Task.objects.unscoped().filter(state="queued").values_list(
        "id", "tenant_id", "attempt", "updated_at")
    for task_id, tenant_id, attempt, since in queued:
        if not sweep.due(f"task:{task_id}:{attempt}", since):
            continue
        if billing.Meter.objects.for_tenant(tenant_id).filter(
                resource_type=RESOURCE_TYPE, resource_id=str(task_id),
                state=billing.Meter.RUNNING).exists():
            TRAIN.send(str(task_id), attempt)
            sent += 1
        else:
            sent += remeter(tenant_id, task_id)
    return sent


def remeter(tenant_id: object, task_id: object) -> int:
    """A queued task whose meter billing stopped while it waited (vanished: no heartbeat came
    for BILLING_LEASE_TIMEOUT_S) is queued again on a new meter, so that it does not run
    unbilled; short of funds, it is stopped (restartable after a top-up). 1 when queued."""

    def once() -> int:
        with context.scope(actor="system:recovery"):
            aggregate = TaskAggregate.load(tenant_id, task_id)
            if aggregate.state != "queued":
                return 0
            task = Task.objects.unscoped().get(id=task_id)
            try:
                meter = billing.start(tenant_id, resource_type=RESOURCE_TYPE,
                                      resource_id=task_id, spec=billing.spec(task.spec_id),
                                      mode=task.billing_mode, project_id=task.project_id)
            except ApiError as exc:  # short of funds, a retired spec
                log.warning("queued task %s not sent again: %s", task_id, exc)
                aggregate.append(TaskStopped(stop_reason=billing.INSUFFICIENT_FUNDS,
                                             best_metric=None, elapsed_s=0.0))
                return 0
            # The same attempt, on the new meter: a message already waiting in a long queue
            # keeps its place (it claims this attempt); the one sent here is a duplicate then.
            aggregate.append(TaskQueued(attempt=aggregate.attempt, meter_id=str(meter.id)))
            enqueue_on_commit(task_id, aggregate.attempt)
            return 1

    return retry_on_conflict(once)
