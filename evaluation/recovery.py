"""Evaluations found again after a crash: queued ones whose message may be lost are sent
again. Running ones whose worker went silent are the lease sweep's (core.lifecycle): the kind
registered here interrupts them, billed up to their last heartbeat, and queues them again (at
most MAX_ATTEMPTS runs), else fails them with the reason."""

import logging
from datetime import datetime

from django.conf import settings

from billing import api as billing
from core import context, leases, lifecycle, recovery
from core.errors import ApiError, VersionConflict
from evaluation.aggregates import EvaluationAggregate
from evaluation.commands import INCLUDED, RESOURCE_TYPE, enqueue, enqueue_on_commit
from evaluation.events import (
    EvaluationFailed,
    EvaluationInterrupted,
    EvaluationQueued,
    EvaluationStopped,
)
from evaluation.models import Evaluation
from evaluation.runner import lease_key
from eventlog.aggregates import retry_on_conflict

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


@recovery.recoverer("evaluations")
def recover_evaluations(sweep: recovery.Sweep) -> int:
    """Send queued runs again; how many were sent."""
    sent = 0
    rows = Evaluation.objects.unscoped().filter(state="queued").values_list(
        "id", "tenant_id", "options", "updated_at")
    for evaluation_id, tenant_id, options, since in rows:
        if not sweep.due(f"evaluation:{evaluation_id}:queued", since):
            continue
        if billed_meter_stopped(tenant_id, evaluation_id):
            sent += remeter(tenant_id, evaluation_id)
        else:
            enqueue(evaluation_id, options.get("device", "cpu"))
            sent += 1
    return sent


def running_runs() -> list[lifecycle.Running]:
    """Every running evaluation, by its lease (one that never beat: by when it started)."""
    return [lifecycle.Running(lease_key(evaluation_id), tenant_id, evaluation_id,
                              started_at or since)
            for evaluation_id, tenant_id, started_at, since in Evaluation.objects.unscoped()
            .filter(state="running").values_list("id", "tenant_id", "started_at", "updated_at")]


def interrupt_lost(lost: list[lifecycle.Lost], lost_all: bool) -> int:
    """Interrupt each lost run (billed to its last heartbeat); how many were queued again."""
    sent = 0
    for item in lost:
        try:
            sent += interrupt(item.work.tenant_id, item.work.work_id, item.last_seen)
        except VersionConflict:  # its worker reported meanwhile: alive after all
            continue
    return sent


KIND = lifecycle.register(lifecycle.Kind(
    "evaluation", timeout_s=lambda: settings.WORK_LEASE_TIMEOUT_S, running=running_runs,
    interrupt=interrupt_lost))


def interrupt(tenant_id: object, evaluation_id: object, last_seen: datetime) -> int:
    """Interrupt a run whose worker died; queue it again while attempts are left (1), else
    fail it (0)."""

    def once() -> int:
        with context.scope(actor="system:recovery"):
            aggregate = EvaluationAggregate.load(tenant_id, evaluation_id)
            if aggregate.state != "running":
                return 0
            retry = aggregate.attempt < MAX_ATTEMPTS
            aggregate.append(EvaluationInterrupted(
                attempt=aggregate.attempt,
                reason=f"No heartbeat from the worker since {last_seen.isoformat()}"
                       + ("; running it again." if retry else "; no retries left.")))
            # billed up to the last heartbeat: the time the worker was gone is not charged
            billing.stop_resource(tenant_id, RESOURCE_TYPE, evaluation_id,
                                  reason="interrupted", at=last_seen)
            leases.release(lease_key(evaluation_id))  # a worker still alive is superseded
            meter_id = ""
            if retry and aggregate.billing_mode != INCLUDED:
                try:
                    meter_id = str(billing.start(
                        tenant_id, resource_type=RESOURCE_TYPE, resource_id=evaluation_id,
                        spec=billing.spec(aggregate.spec), mode=aggregate.billing_mode,
                        project_id=aggregate.project).id)
                except Exception as exc:  # short of funds, a retired spec: no retry
                    log.warning("evaluation %s not retried: %s", evaluation_id, exc)
                    retry = False
            if not retry:
                aggregate.append(EvaluationFailed(
                    code="worker_lost", message="The worker running this evaluation stopped "
                    "answering and it could not be run again; create the evaluation again."))
                return 0
            aggregate.append(EvaluationQueued(meter_id=meter_id))
            device = Evaluation.objects.unscoped().get(id=evaluation_id).options.get("device")
            enqueue_on_commit(evaluation_id, device or "cpu")
            return 1

    return retry_on_conflict(once)


def billed_meter_stopped(tenant_id: object, evaluation_id: object) -> bool:
    """A billed run whose meter is not running any more (settled as vanished while queued)."""
    meters = billing.Meter.objects.for_tenant(tenant_id).filter(
        resource_type=RESOURCE_TYPE, resource_id=str(evaluation_id))
    return meters.exists() and not meters.filter(state=billing.Meter.RUNNING).exists()


def remeter(tenant_id: object, evaluation_id: object) -> int:
    """Queue a run again on a new meter, so that it does not run unbilled; short of funds it
    is stopped with insufficient_funds. 1 when queued."""

    def once() -> int:
        with context.scope(actor="system:recovery"):
            aggregate = EvaluationAggregate.load(tenant_id, evaluation_id)
            if aggregate.state != "queued":
                return 0
            try:
                meter = billing.start(
                    tenant_id, resource_type=RESOURCE_TYPE, resource_id=evaluation_id,
                    spec=billing.spec(aggregate.spec), mode=aggregate.billing_mode,
                    project_id=aggregate.project)
            except ApiError as exc:
                log.warning("queued evaluation %s not sent again: %s", evaluation_id, exc)
                aggregate.append(EvaluationStopped(reason=billing.INSUFFICIENT_FUNDS))
                return 0
            aggregate.append(EvaluationQueued(meter_id=str(meter.id)))
            device = Evaluation.objects.unscoped().get(id=evaluation_id).options.get("device")
            enqueue_on_commit(evaluation_id, device or "cpu")
            return 1

    return retry_on_conflict(once)
