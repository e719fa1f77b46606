"""Tasks found again after a crash: queued ones whose message may be lost are sent again.
Running attempts whose worker went silent are the lease sweep's (core.lifecycle): the kind
registered here hands them to tasks.worker_commands.interrupt (retried from the checkpoint up
to TASK_MAX_ATTEMPTS); when `make run` starts again they are all lost at once."""

import logging

from django.conf import settings

from billing import api as billing
from core import context, lifecycle, recovery
from core.errors import ApiError, VersionConflict
from eventlog.aggregates import retry_on_conflict
from tasks.aggregates import TaskAggregate
from tasks.commands import RESOURCE_TYPE, TRAIN, enqueue_on_commit
from tasks.events import TaskQueued, TaskStopped
from tasks.models import Task
from tasks.worker_commands import interrupt, lease_key

log = logging.getLogger(__name__)


@recovery.recoverer("tasks")
def recover_tasks(sweep: recovery.Sweep) -> int:
    """Send queued attempts again (a duplicate finds its attempt claimed and does nothing);
    how many were sent. The freeze was made when the task was queued: sending is free."""
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


def running_attempts() -> list[lifecycle.Running]:
    """Every running attempt, by its lease (one that never beat: by when it started)."""
    return [lifecycle.Running(lease_key(task_id), tenant_id, task_id, started_at)
            for task_id, tenant_id, started_at in Task.objects.unscoped().filter(
                state="running").values_list("id", "tenant_id", "started_at")]


def interrupt_lost(lost: list[lifecycle.Lost], lost_all: bool) -> int:
    """Interrupt each lost attempt (billed to its last heartbeat); how many were queued again."""
    retried = 0
    for item in lost:
        try:
            retried += interrupt(item.work.tenant_id, item.work.work_id, item.last_seen)
        except VersionConflict:  # the worker reported meanwhile: it is alive after all
            continue
    return retried


KIND = lifecycle.register(lifecycle.Kind(
    "task", timeout_s=lambda: settings.TASK_LEASE_TIMEOUT_S, running=running_attempts,
    interrupt=interrupt_lost))
