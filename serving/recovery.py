"""Service instances found again after a crash: an instance whose heartbeat is older than
SERVING_INSTANCE_TIMEOUT_S is lost (restarted, or the service fails with instance_lost), and
an instance the service wants but no worker started (its message lost) is sent again."""

from django.conf import settings

from core import leases, recovery
from core.scheduler import periodic
from serving import commands
from serving.aggregates import LOST, RESTARTED
from serving.instance import lease_key
from serving.models import Service, ServiceInstance

ACTIVE = ("deploying", "running", "updating")


@recovery.recoverer("serving")
def recover_instances(sweep: recovery.Sweep) -> int:
    """Restart lost instances and send missing ones; how many instances were sent."""
    services = list(Service.objects.unscoped().filter(state__in=ACTIVE).values_list(
        "id", "tenant_id", "instance_count", "updated_at"))
    if not services:
        return 0
    live: dict[object, dict[int, object]] = {}
    for service_id, number, started_at in ServiceInstance.objects.unscoped().filter(
            service_id__in=[s[0] for s in services], state__in=("starting", "ready")
    ).values_list("service_id", "number", "started_at"):
        live.setdefault(service_id, {})[number] = started_at
    beats = leases.with_prefix("service:")
    stale = sweep.stale_before(settings.SERVING_INSTANCE_TIMEOUT_S)
    sent = 0
    for service_id, tenant_id, count, since in services:
        instances = live.get(service_id, {})
        seen = {n: beats.get(lease_key(service_id, n)) or started
                for n, started in instances.items()}
        lost = {n for n, at in seen.items() if at < stale}
        if lost:
            last = max(seen[n] for n in lost)
            sent += len(commands.instances_lost(tenant_id, service_id, lost, last,
                                                reason=RESTARTED if sweep.lost_all else LOST))
        for number in sorted(set(range(count)) - set(instances)):
            if sweep.due(f"{lease_key(service_id, number)}:start", since):
                commands.start_instances(service_id, [number])
                sent += 1
    return sent


@periodic(settings.SERVING_INSTANCE_CHECK_INTERVAL_S, name="serving.check_instances")
def check_instances() -> None:
    """Between recovery sweeps, often: a dead instance is found within about
    SERVING_INSTANCE_TIMEOUT_S + SERVING_INSTANCE_CHECK_INTERVAL_S."""
    from django.db import close_old_connections

    try:
        recover_instances(recovery.Sweep())
    finally:
        close_old_connections()
