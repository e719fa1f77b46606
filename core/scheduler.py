"""Periodic jobs: one scheduler process calls each registered job when it is due.

Jobs must be idempotent and quick (they usually just enqueue actors), so that a duplicate run
after a scheduler restart is harmless.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    every_s: float
    fn: Callable[[], object]
    next_run: float = field(default=0.0)


_jobs: dict[str, PeriodicJob] = {}


def periodic(every_s: float, name: str | None = None) -> Callable[[Callable], Callable]:
    """Register a function to run every `every_s` seconds in the scheduler."""

    def register(fn: Callable[[], object]) -> Callable[[], object]:
        job_name = name or f"{fn.__module__}.{fn.__qualname__}"
        _jobs[job_name] = PeriodicJob(job_name, every_s, fn)
        return fn

    return register


def jobs() -> list[PeriodicJob]:
    """The registered jobs."""
    return list(_jobs.values())


def run_due(now: float | None = None) -> list[str]:
    """Run every job that is due; a failing job is logged and retried at its next period."""
    now = time.monotonic() if now is None else now
    ran = []
    for job in _jobs.values():
        if job.next_run <= now:
            job.next_run = now + job.every_s
            try:
                job.fn()
            except Exception:
                logger.exception("periodic job %s failed", job.name)
            ran.append(job.name)
    return ran


def run_forever(stop: Callable[[], bool] = lambda: False, tick_s: float = 1.0) -> None:
    """Run due jobs until `stop()` says so."""
    from django.db import close_old_connections

    while not stop():
        run_due()
        close_old_connections()  # back to the pool between ticks, as a request's would be
        time.sleep(tick_s)
