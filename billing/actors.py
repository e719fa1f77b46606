"""Billing's periodic work: settle every running meter."""

import dramatiq
from django.conf import settings

from billing import metering
from core.broker import CPU_QUEUE
from core.scheduler import periodic
from core.telemetry import metrics


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=3)
def settle_running_meters() -> None:
    """Charge running usage, keep freezes covering 2 hours, stop the short and the vanished."""
    with metrics.counted(metrics.SETTLEMENTS, metrics.SETTLEMENT_DURATION):
        metering.settle_running()


@periodic(settings.BILLING_SETTLE_INTERVAL_S, name="billing.settle_running_meters")
def schedule_settlement() -> None:
    """Enqueue a settlement pass (idempotent: a second pass charges only new seconds)."""
    settle_running_meters.send()
