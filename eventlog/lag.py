"""How far an asynchronous projection trails the log, for /metrics (core.telemetry.metrics)."""

from django.utils import timezone

from core.telemetry import metrics
from eventlog.models import ProjectionCheckpoint
from eventlog.projections import Projection
from eventlog.records import read_log


def observe(projection: Projection) -> float:
    """Set the projection's position and lag gauges; the lag in seconds: the age of the oldest
    event of its types it has not handled yet (0 when caught up). One indexed read."""
    checkpoint = ProjectionCheckpoint.objects.filter(name=projection.name).values_list(
        "position", flat=True).first() or 0
    waiting = read_log(after=checkpoint, limit=1, types=sorted(projection.event_types))
    seconds = (timezone.now() - waiting[0].recorded_at).total_seconds() if waiting else 0.0
    metrics.PROJECTION_POSITION.labels(projection.name).set(checkpoint)
    metrics.PROJECTION_LAG.labels(projection.name).set(max(seconds, 0.0))
    return seconds
