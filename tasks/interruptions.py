"""Attempts whose worker died: interrupted, billed up to their last heartbeat, retried."""

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction

from billing import api as billing
from core import context
from core.errors import VersionConflict
from tasks.aggregates import TaskAggregate
from tasks.commands import RESOURCE_TYPE, enqueue_on_commit
from tasks.events import TaskInterrupted, TaskQueued
from tasks.models import Task, TaskLease

log = logging.getLogger(__name__)


def interrupt_lost_attempts(cutoff: datetime) -> list[str]:
    """Interrupt every running task whose lease is older than `cutoff`; returns their ids."""
    running = list(Task.objects.unscoped().filter(state="running"))
    # Every running task's lease, fresh ones too: a task is lost when its lease is stale, or
    # when it has none and started before the cutoff (its worker died before the first beat).
    leases = dict(TaskLease.objects.filter(task_id__in=[t.id for t in running]).values_list(
        "task_id", "last_seen_at"))
    lost = [t for t in running if (leases[t.id] < cutoff if t.id in leases else
                                   t.started_at is not None and t.started_at < cutoff)]
    done = []
    for task in lost:
        try:
            _interrupt(task, leases.get(task.id) or task.started_at)
            done.append(str(task.id))
        except VersionConflict:  # the worker reported meanwhile: it is alive after all
            continue
    return done


def _interrupt(task: Task, last_seen: datetime) -> None:
    with transaction.atomic(), context.scope(actor="system:lease-check"):
        aggregate = TaskAggregate.load(task.tenant_id, task.id)
        if aggregate.state != "running":
            return
        retry = aggregate.attempt < settings.TASK_MAX_ATTEMPTS and not aggregate.stop_requested
        aggregate.append(TaskInterrupted(
            attempt=aggregate.attempt,
            reason=f"No heartbeat from the worker since {last_seen.isoformat()}"
                   + ("; retrying from the last checkpoint." if retry else "; no retries left.")))
        # Billed up to the last heartbeat: the time the worker was gone is not charged.
        billing.stop_resource(task.tenant_id, RESOURCE_TYPE, task.id, reason="interrupted",
                              at=last_seen)
        TaskLease.objects.filter(task_id=task.id).delete()
        if not retry:
            return
        spec = billing.spec(task.spec_id)
        try:
            meter = billing.start(task.tenant_id, resource_type=RESOURCE_TYPE,
                                  resource_id=task.id, spec=spec, mode=task.billing_mode,
                                  project_id=task.project_id)
        except Exception as exc:  # short of funds: stays interrupted, restartable later
            log.warning("task %s not retried: %s", task.id, exc)
            return
        aggregate.append(TaskQueued(attempt=aggregate.attempt + 1, meter_id=str(meter.id)))
        enqueue_on_commit(task.id, aggregate.attempt)
