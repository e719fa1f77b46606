"""What instances cannot do for themselves: stop a service past its maximum running time when
no instance is alive to notice, finish a stop whose instances died, and report each closed
minute of traffic as a ServiceTrafficRecorded event, so that dashboards see monitoring live on
the websocket (the counters themselves are not events: see serving.monitoring)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from serving import commands, monitoring
from serving.aggregates import ServiceAggregate
from serving.events import ServiceTrafficRecorded
from serving.models import Service, ServiceMinute

STOPPING_GRACE_S = 60


def check(at: datetime | None = None) -> dict[str, int]:
    """One pass; how many services it stopped and how many stops it finished."""
    now = at or timezone.now()
    stopped = finished = 0
    for row in Service.objects.unscoped().filter(state__in=("deploying", "running",
                                                            "updating")):
        if (now - row.created_at).total_seconds() >= row.max_runtime_s:
            stopped += commands.request_stop(row.tenant_id, row.id, "max_runtime",
                                             "system:serving")
    grace = now - timedelta(seconds=max(STOPPING_GRACE_S, settings.SERVING_WATCHDOG_INTERVAL_S))
    for row in Service.objects.unscoped().filter(state="stopping", updated_at__lt=grace):
        finished += commands.complete_stop(row.tenant_id, row.id)
    reported = sum(report_traffic(row, now) for row in Service.objects.unscoped().filter(
        state__in=("running", "updating", "stopping")))
    return {"stopped": stopped, "finished": finished, "reported": reported}


def report_traffic(row: Service, now: datetime) -> int:
    """Append the service's closed minutes not reported yet; how many."""
    # a minute is closed once every web process has flushed it
    closed_before = now - timedelta(seconds=2 * settings.SERVING_MONITOR_FLUSH_S)
    closed_before = closed_before.replace(second=0, microsecond=0)
    aggregate = ServiceAggregate.load(row.tenant_id, row.id)
    minutes = ServiceMinute.objects.for_tenant(row.tenant_id).filter(
        service_id=row.id, minute__lt=closed_before).order_by("minute")
    reported = [m for m in monitoring.summaries(minutes)
                if m["minute"] > aggregate.traffic_until]
    if reported:
        aggregate.append(*(ServiceTrafficRecorded(**m) for m in reported))
    return len(reported)
