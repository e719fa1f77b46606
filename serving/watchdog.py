"""What instances cannot do for themselves: stop a service past its maximum running time when
no instance is alive to notice, and finish a stop whose instances died."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from serving import commands
from serving.models import Service

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
    return {"stopped": stopped, "finished": finished}
