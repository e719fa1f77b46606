"""Evaluations found again after a crash: queued ones whose message may be lost are sent
again; running ones whose worker went silent are interrupted, billed up to their last
heartbeat, and queued again (at most MAX_ATTEMPTS runs), else failed with the reason."""

import logging
from datetime import datetime

from django.conf import settings

from billing import api as billing
from core import context, leases, recovery
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
    """Send queued runs again and retry lost running ones; how many were sent."""
    sent = 0
    rows = list(Evaluation.objects.unscoped().filter(state__in=("queued", "running")).values_list(
        "id", "tenant_id", "state", "options", "updated_at", "started_at"))
    seen = leases.last_seen(lease_key(row[0]) for row in rows)
    stale = sweep.stale_before(settings.WORK_LEASE_TIMEOUT_S)
    for evaluation_id, tenant_id, state, options, since, started_at in rows:
        if state == "queued":
            if not sweep.due(f"evaluation:{evaluation_id}:queued", since):
                continue
            if billed_meter_stopped(tenant_id, evaluation_id):
                sent += remeter(tenant_id, evaluation_id)
            else:
                enqueue(evaluation_id, options.get("device", "cpu"))
                sent += 1
            continue
        beat = seen.get(lease_key(evaluation_id)) or started_at
        if beat is not None and beat >= stale:
            continue  # its worker is alive
        try:
            sent += interrupt(tenant_id, evaluation_id, beat or since)
        except VersionConflict:  # its worker reported meanwhile: alive after all
            continue
    return sent


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
