"""The training worker's writes to a task's stream, each a command that checks the aggregate's
rules before it appends: claim an attempt, report on it, finish it, and interrupt an attempt
whose worker went silent (the lease sweep's command, core.lifecycle).

An attempt writes only while it is the task's current attempt and the task is running: a
report or an ending from an attempt given up for lost (a newer one owns the task) appends
nothing. The worker keeps its attempt's aggregate and catches it up before each write, so a
long run's many progress reports do not each replay the whole stream.
"""

import logging
import uuid
from datetime import datetime

from django.conf import settings
from django.db import transaction

from billing import api as billing
from core import context, leases
from core.errors import VersionConflict
from eventlog.aggregates import retry_on_conflict
from eventlog.store import load_stream
from tasks.aggregates import TaskAggregate
from tasks.commands import RESOURCE_TYPE, queue_next_attempt
from tasks.events import TaskInterrupted, TaskStarted
from tasks.models import Task

log = logging.getLogger(__name__)


def lease_key(task_id: object) -> str:
    """The lease of a task's running attempt (core.lifecycle)."""
    return f"task:{task_id}"


class Attempt:
    """One claimed attempt of a task, as its worker writes it."""

    def __init__(self, task: Task, aggregate: TaskAggregate, number: int) -> None:
        self.task, self.aggregate, self.number = task, aggregate, number
        self.meter_id = aggregate.meter_id

    def _catch_up(self) -> None:
        for event in load_stream(self.aggregate.stream.id, after_version=self.aggregate.version):
            self.aggregate.apply(event)

    @property
    def current(self) -> bool:
        """Whether this attempt still owns the task (it is running, at this attempt)."""
        return self.aggregate.state == "running" and self.aggregate.attempt == self.number

    def report(self, *events: object) -> bool:
        """Append worker events at the stream's head while this attempt owns the task (a stop
        request may come in between: checked again from the new head); False: refused."""

        def once() -> bool:
            self._catch_up()
            if not self.current:
                log.info("task %s attempt %s: %s refused, the task is %s at attempt %s",
                         self.task.id, self.number, [type(e).__name__ for e in events],
                         self.aggregate.state, self.aggregate.attempt)
                return False
            self.aggregate.append(*events)
            return True

        return retry_on_conflict(once)

    def finish(self, ending: object, reason: str) -> bool:
        """End the attempt with its one ending event and stop its billing meter in the same
        transaction (whoever sees the task ended sees its bill settled); False: refused."""
        with transaction.atomic():
            if not self.report(ending):
                return False
            billing.stop_resource(self.task.tenant_id, RESOURCE_TYPE, self.task.id,
                                  reason=reason)
        return True


def claim(task_id: str | uuid.UUID, attempt: int, node: str) -> Attempt | None:
    """Mark the attempt started; None when it is not this attempt's turn (a duplicate or
    late delivery, or the task was stopped while queued)."""
    task = Task.objects.unscoped().filter(id=task_id).first()
    if task is None:
        return None
    aggregate = TaskAggregate.load(task.tenant_id, task_id)
    if aggregate.state != "queued" or aggregate.attempt != attempt:
        log.info("task %s attempt %s not claimed: it is %s at attempt %s", task_id, attempt,
                 aggregate.state, aggregate.attempt)
        return None
    try:
        aggregate.append(TaskStarted(attempt=attempt, node=node))
    except VersionConflict:
        return None
    task.refresh_from_db()
    return Attempt(task, aggregate, attempt)


def interrupt(tenant_id: object, task_id: object, last_seen: datetime) -> bool:
    """Interrupt a running attempt whose worker went silent, billed up to `last_seen`, and queue
    the next one (it resumes from the checkpoint) while TASK_MAX_ATTEMPTS allows and no stop
    was asked for; True when it was queued again."""
    with transaction.atomic(), context.scope(actor="system:lease-check"):
        aggregate = TaskAggregate.load(tenant_id, task_id)
        if aggregate.state != "running":
            return False
        retry = aggregate.attempt < settings.TASK_MAX_ATTEMPTS and not aggregate.stop_requested
        aggregate.append(TaskInterrupted(
            attempt=aggregate.attempt,
            reason=f"No heartbeat from the worker since {last_seen.isoformat()}"
                   + ("; retrying from the last checkpoint." if retry else "; no retries left.")))
        # Billed up to the last heartbeat: the time the worker was gone is not charged.
        billing.stop_resource(tenant_id, RESOURCE_TYPE, task_id, reason="interrupted",
                              at=last_seen)
        leases.release(lease_key(task_id))  # a worker still alive finds itself superseded
        if not retry:
            return False
        try:
            with transaction.atomic():
                queue_next_attempt(aggregate, Task.objects.unscoped().get(id=task_id))
        except Exception as exc:  # short of funds: stays interrupted, restartable later
            log.warning("task %s not retried: %s", task_id, exc)
            return False
        return True
