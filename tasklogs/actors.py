"""Jobs of the log store: dropping lines older than the retention period."""

from datetime import timedelta

import dramatiq
from django.conf import settings

from core.broker import CPU_QUEUE
from core.scheduler import periodic
from tasklogs import api


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=3)
def purge_old_lines() -> None:
    """Delete log lines older than TASK_LOG_RETENTION_DAYS."""
    api.purge(timedelta(days=settings.TASK_LOG_RETENTION_DAYS))


@periodic(3600, name="tasklogs.purge")
def schedule_purge() -> None:
    """Enqueue the purge (idempotent: a second run finds nothing old left)."""
    purge_old_lines.send()
