"""State changes of services: publish, stop, update to another model, reissue the key; and the
instance side's reports (started, ready, exited) and how a stop completes.

Publishing starts the billing meter in the same transaction (resource type "service"; postpaid
freezes 2 hours): a 402 writes nothing. A stop asks the instances to leave; the last instance to
leave (or the stop itself, when none is live) appends ServiceStopped and stops the meter in one
transaction.
"""

import contextlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.api import digest, new_secret
from billing import api as billing
from core import context
from core.broker import SERVING_QUEUE
from core.errors import (
    NotFound,
    ServiceEnded,
    ServiceNotRunning,
    ValidationFailed,
    VersionConflict,
)
from core.tenancy import TenantAccess
from core.work import Work
from eventlog.aggregates import retry_on_conflict
from modelregistry import api as modelregistry
from serving.aggregates import ENDED, LOST, ServiceAggregate
from serving.events import (
    ServiceCreated,
    ServiceFailed,
    ServiceInstanceExited,
    ServiceInstanceReady,
    ServiceInstanceStarted,
    ServiceKeyIssued,
    ServiceMeterStarted,
    ServiceStopped,
    ServiceStopRequested,
    ServiceUpdated,
    ServiceUpdateStarted,
)
from serving.models import Service

RESOURCE_TYPE = "service"
KEY_PREFIX = "svk_"
DEFAULT_MAX_RUNTIME_S = 2 * 3600
MAX_RUNTIME_LIMIT_S = 30 * 24 * 3600
SERVING = ("running", "updating")
RUN_INSTANCE = Work("run_service_instance", SERVING_QUEUE)  # declared in serving.actors


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _new_key() -> tuple[str, ServiceKeyIssued]:
    secret = new_secret(KEY_PREFIX)
    return secret, ServiceKeyIssued(prefix=secret[:len(KEY_PREFIX) + 6], digest=digest(secret))


def create_service(access: TenantAccess, values: dict[str, Any]) -> tuple[Service, str]:
    """Publish a model; the service and its prediction key (shown once). 402 writes nothing."""
    tenant_id = access.tenant_id
    model = modelregistry.get(tenant_id, values.get("model"))
    spec = billing.spec(values["spec"])
    mode = values.get("billing_mode") or billing.POSTPAID
    max_runtime = int(values.get("max_runtime_s") or DEFAULT_MAX_RUNTIME_S)
    if not 60 <= max_runtime <= MAX_RUNTIME_LIMIT_S:
        raise _invalid("max_runtime_s", f"The maximum running time must be 60 to "
                                        f"{MAX_RUNTIME_LIMIT_S} seconds.")
    instances = int(values.get("instances") or 1)
    if not 1 <= instances <= settings.SERVING_MAX_INSTANCES:
        raise _invalid("instances", f"A service has 1 to {settings.SERVING_MAX_INSTANCES} "
                                    "instances.")
    service_id = uuid.uuid4()
    secret, key_event = _new_key()
    with transaction.atomic(), context.scope(actor=access.actor):
        meter = billing.start(tenant_id, resource_type=RESOURCE_TYPE, resource_id=service_id,
                              spec=spec, mode=mode, project_id=model.project_id)
        ServiceAggregate(tenant_id, service_id).append(
            ServiceCreated(project=str(model.project_id), model=str(model.id),
                           name=values["name"], spec=str(spec.id), spec_name=spec.name,
                           billing_mode=mode, max_runtime_s=max_runtime, instances=instances,
                           options={}),
            ServiceMeterStarted(meter_id=str(meter.id)), key_event)
        transaction.on_commit(lambda: start_instances(service_id, range(instances)))
    return Service.objects.for_tenant(tenant_id).get(id=service_id), secret


def start_instances(service_id: uuid.UUID | str, numbers: Iterable[int]) -> None:
    """Send each instance of the service to the serving queue."""
    for number in numbers:
        RUN_INSTANCE.send(str(service_id), number)


# The commands below meet the instances' own events (started, ready, exited, traffic) on the
# service's stream at any moment: each runs again from the new head when one came first.


def reissue_key(access: TenantAccess, service_id: object) -> str:
    """A new prediction key; the old one stops working at once."""

    def reissue() -> str:
        aggregate = ServiceAggregate.load(access.tenant_id, service_id)
        if aggregate.state in ENDED:
            raise ServiceEnded(f"The service is {aggregate.state}; publish the model again as a "
                               "new service.")
        secret, key_event = _new_key()
        with context.scope(actor=access.actor):
            aggregate.append(key_event)
        return secret

    return retry_on_conflict(reissue)


def request_stop(tenant_id: object, service_id: object, reason: str, actor: str) -> bool:
    """Ask the service to stop; False when it is already stopping or ended."""

    def stop() -> bool:
        with context.scope(actor=actor):
            aggregate = ServiceAggregate.load(tenant_id, service_id)
            if aggregate.state in (*ENDED, "stopping"):
                return False
            aggregate.append(ServiceStopRequested(reason=reason))
            if not _live(aggregate):
                _finish(aggregate, reason)
        return True

    return retry_on_conflict(stop)


def _live(aggregate: ServiceAggregate) -> set[int]:
    return aggregate.started - aggregate.exited


def _finish(aggregate: ServiceAggregate, reason: str) -> None:
    """Stopped, and the meter with it (inside the caller's transaction)."""
    aggregate.append(ServiceStopped(reason=reason))
    billing.stop_resource(aggregate.stream.tenant_id, RESOURCE_TYPE, aggregate.stream.id,
                          reason="completed" if reason == "user" else reason)


def stop_reason(tenant_id: object, service_id: object) -> str:
    """Why the service is stopping (its row's reason)."""
    row = Service.objects.for_tenant(tenant_id).filter(id=service_id).first()
    return row.stop_reason if row is not None else "user"


def update_model(access: TenantAccess, service_id: object, model_id: object) -> Service:
    """Switch a running service to another model of the same scenario, instance by instance."""

    def start_update() -> None:
        aggregate = ServiceAggregate.load(access.tenant_id, service_id)
        if aggregate.state != "running":
            raise ServiceNotRunning(f"The service is {aggregate.state}; only a running service "
                                    "can be updated.")
        current = modelregistry.get(access.tenant_id, aggregate.model)
        model = modelregistry.get(access.tenant_id, model_id)
        if model.scenario != current.scenario:
            raise _invalid("model", f"The service serves a {current.scenario} model; this one "
                                    f"is {model.scenario}.")
        if str(model.id) == aggregate.model:
            raise _invalid("model", "The service already serves this model.")
        with context.scope(actor=access.actor):
            aggregate.append(ServiceUpdateStarted(update=str(uuid.uuid4()), model=str(model.id),
                                                  previous_model=aggregate.model))

    retry_on_conflict(start_update)
    return Service.objects.for_tenant(access.tenant_id).get(id=service_id)


# --- the instance side ---------------------------------------------------------------------


def instance_started(tenant_id: object, service_id: object, number: int, node: str
                     ) -> ServiceAggregate | None:
    """Claim an instance slot; None when the service no longer wants it."""
    try:
        aggregate = ServiceAggregate.load(tenant_id, service_id)
        if aggregate.state not in ("deploying", *SERVING) or number in _live(aggregate):
            return None
        aggregate.append(ServiceInstanceStarted(instance=number, node=node))
    except (NotFound, VersionConflict):
        return None
    return aggregate


def instance_ready(tenant_id: object, service_id: object, number: int, model_id: str) -> None:
    """The instance serves `model_id`; the last instance to switch completes an update."""

    def ready() -> None:
        aggregate = ServiceAggregate.load(tenant_id, service_id)
        events: list[object] = [ServiceInstanceReady(instance=number, model=model_id)]
        serving_now = {**aggregate.ready, number: model_id}
        live = _live(aggregate)
        if (aggregate.state == "updating" and model_id == aggregate.model
                and all(serving_now.get(n) == aggregate.model for n in live)):
            events.append(ServiceUpdated(update=aggregate.update, model=aggregate.model))
        aggregate.append(*events)

    retry_on_conflict(ready)


def instance_exited(tenant_id: object, service_id: object, number: int, reason: str) -> None:
    """The instance left; the last one to leave a stopping service stops it (when the stream
    keeps moving, the watchdog finishes the stop: an exit must not fail its instance)."""

    def exited() -> None:
        aggregate = ServiceAggregate.load(tenant_id, service_id)
        if number not in _live(aggregate):
            return
        aggregate.append(ServiceInstanceExited(instance=number, reason=reason))
        if aggregate.state == "stopping" and not _live(aggregate):
            _finish(aggregate, stop_reason(tenant_id, service_id))

    with contextlib.suppress(VersionConflict):
        retry_on_conflict(exited)


def fail(tenant_id: object, service_id: object, code: str, message: str) -> None:
    """The service cannot serve: failed, its meter stopped."""
    with transaction.atomic():
        aggregate = ServiceAggregate.load(tenant_id, service_id)
        if aggregate.state in ENDED:
            return
        aggregate.append(ServiceFailed(code=code, message=message[:2000]))
        billing.stop_resource(tenant_id, RESOURCE_TYPE, service_id, reason="failed")


def instances_lost(tenant_id: object, service_id: object, numbers: set[int],
                   last_seen: datetime, *, reason: str = LOST) -> list[int]:
    """Instances whose worker went silent: each exits as lost and is started again, while the
    service has restarts left (SERVING_INSTANCE_MAX_RESTARTS); past that, the service fails
    with code instance_lost, billed up to the last heartbeat. The instances to start again.

    Another `reason` (process_restarted: `make run` itself was restarted) is no fault of the
    instance's and takes none of its restarts."""

    def lose() -> list[int]:
        aggregate = ServiceAggregate.load(tenant_id, service_id)
        gone = sorted(numbers & _live(aggregate))
        if aggregate.state not in ("deploying", *SERVING) or not gone:
            return []
        with context.scope(actor="system:serving"):
            restarts = aggregate.lost
            aggregate.append(*(ServiceInstanceExited(instance=n, reason=reason) for n in gone))
            counted = len(gone) if reason == LOST else 0
            if restarts + counted <= settings.SERVING_INSTANCE_MAX_RESTARTS:
                transaction.on_commit(lambda: start_instances(service_id, gone))
                return gone
            aggregate.append(ServiceFailed(code="instance_lost", message=(
                f"Instance {gone[0]} stopped answering (no heartbeat since "
                f"{last_seen.isoformat()}) after {restarts} restart(s); the service was "
                "stopped. Publish the model again.")))
            billing.stop_resource(tenant_id, RESOURCE_TYPE, service_id, reason="failed",
                                  at=last_seen)
        return []

    return retry_on_conflict(lose)


def complete_stop(tenant_id: object, service_id: object) -> bool:
    """Stop a service stuck in stopping (its instances vanished); False when not stopping."""
    with transaction.atomic():
        aggregate = ServiceAggregate.load(tenant_id, service_id)
        if aggregate.state != "stopping":
            return False
        for number in sorted(_live(aggregate)):
            aggregate.append(ServiceInstanceExited(instance=number, reason="lost"))
        _finish(aggregate, stop_reason(tenant_id, service_id))
    return True
