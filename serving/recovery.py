"""Service instances found again after a crash: an instance the service wants but no worker
started (its message lost) is sent again. An instance whose heartbeat is older than
SERVING_INSTANCE_TIMEOUT_S is the lease sweep's (core.lifecycle): the kind registered here
restarts it (up to SERVING_INSTANCE_MAX_RESTARTS), or the service fails with instance_lost."""

from django.conf import settings

from core import lifecycle, recovery
from core.scheduler import periodic
from serving import commands
from serving.aggregates import LOST, RESTARTED
from serving.instance import lease_key
from serving.models import Service, ServiceInstance

ACTIVE = ("deploying", "running", "updating")


@recovery.recoverer("serving")
def recover_instances(sweep: recovery.Sweep) -> int:
    """Send the instances nobody started; how many were sent."""
    services = list(Service.objects.unscoped().filter(state__in=ACTIVE).values_list(
        "id", "tenant_id", "instance_count", "updated_at"))
    if not services:
        return 0
    live: dict[object, dict[int, object]] = {}
    for service_id, number, started_at in ServiceInstance.objects.unscoped().filter(
            service_id__in=[s[0] for s in services], state__in=("starting", "ready")
    ).values_list("service_id", "number", "started_at"):
        live.setdefault(service_id, {})[number] = started_at
    sent = 0
    for service_id, _tenant_id, count, since in services:
        instances = live.get(service_id, {})
        for number in sorted(set(range(count)) - set(instances)):
            if sweep.due(f"{lease_key(service_id, number)}:start", since):
                commands.start_instances(service_id, [number])
                sent += 1
    return sent


def running_instances() -> list[lifecycle.Running]:
    """Every started or ready instance of an active service, by its lease."""
    return [lifecycle.Running(lease_key(service_id, number), tenant_id, service_id, started_at,
                              number)
            for service_id, tenant_id, number, started_at in ServiceInstance.objects.unscoped()
            .filter(state__in=("starting", "ready"), service_id__in=Service.objects.unscoped()
                    .filter(state__in=ACTIVE).values("id"))
            .values_list("service_id", "tenant_id", "number", "started_at")]


def restart_lost(lost: list[lifecycle.Lost], lost_all: bool) -> int:
    """Each service's lost instances exit and start again (the service's command counts its
    restarts; `make run` starting again takes none); how many were started again."""
    by_service: dict[tuple[object, object], list[lifecycle.Lost]] = {}
    for item in lost:
        by_service.setdefault((item.work.tenant_id, item.work.work_id), []).append(item)
    sent = 0
    for (tenant_id, service_id), items in by_service.items():
        sent += len(commands.instances_lost(
            tenant_id, service_id, {item.work.number for item in items},
            max(item.last_seen for item in items), reason=RESTARTED if lost_all else LOST))
    return sent


KIND = lifecycle.register(lifecycle.Kind(
    "service_instance", timeout_s=lambda: settings.SERVING_INSTANCE_TIMEOUT_S,
    running=running_instances, interrupt=restart_lost))


@periodic(settings.SERVING_INSTANCE_CHECK_INTERVAL_S, name="serving.check_instances")
def check_instances() -> None:
    """Between recovery sweeps, often: an instance whose message was lost is sent again once
    RECOVERY_REQUEUE_AFTER_S has passed (lost instances are the lease sweep's, as often)."""
    from django.db import close_old_connections

    try:
        recover_instances(recovery.Sweep())
    finally:
        close_old_connections()
