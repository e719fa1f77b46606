"""Serving jobs: service instances on the serving queue; the stop watchdog on the CPU queue."""

import dramatiq
from django.conf import settings

from core.broker import CPU_QUEUE
from core.scheduler import periodic
from serving import instance, recovery, watchdog  # noqa: F401  (recovery: its jobs)
from serving.commands import RUN_INSTANCE

_MONTH_MS = 31 * 24 * 3600 * 1000


@RUN_INSTANCE.actor(max_retries=0, time_limit=_MONTH_MS)
def run_service_instance(service_id: str, number: int) -> None:
    """Serve one instance until the service stops (a worker thread per instance)."""
    instance.run(service_id, number)


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=3)
def check_services() -> None:
    """Stop services past their maximum running time and finish stops whose instances died."""
    watchdog.check()


@periodic(settings.SERVING_WATCHDOG_INTERVAL_S, name="serving.check_services")
def schedule_check() -> None:
    """Enqueue the service watchdog."""
    check_services.send()
