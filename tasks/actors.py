"""Task jobs: train an attempt on the GPU queue; find attempts whose worker died."""

from datetime import timedelta

import dramatiq
from django.conf import settings
from django.utils import timezone

from core.broker import CPU_QUEUE
from core.scheduler import periodic
from tasks import recovery, runner  # noqa: F401  (recovery registers its recoverer)
from tasks.commands import TRAIN
from tasks.interruptions import interrupt_lost_attempts

# A training attempt ends itself (max_duration_s); the broker must not kill it first.
_WEEK_MS = 7 * 24 * 3600 * 1000


@TRAIN.actor(max_retries=0, time_limit=_WEEK_MS)
def train_task(task_id: str, attempt: int) -> None:
    """Run one attempt of a task (a duplicate delivery finds it claimed and does nothing)."""
    runner.run_attempt(task_id, attempt)


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=3)
def check_task_leases() -> None:
    """Interrupt attempts without a heartbeat for TASK_LEASE_TIMEOUT_S and retry them."""
    cutoff = timezone.now() - timedelta(seconds=settings.TASK_LEASE_TIMEOUT_S)
    interrupt_lost_attempts(cutoff)


@periodic(settings.TASK_LEASE_CHECK_INTERVAL_S, name="tasks.check_task_leases")
def schedule_lease_check() -> None:
    """Enqueue the lease check."""
    check_task_leases.send()
