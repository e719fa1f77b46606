"""Evaluation jobs on the CPU queue."""

import dramatiq

from core.broker import CPU_QUEUE
from evaluation import runner

_DAY_MS = 24 * 3600 * 1000


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=0, time_limit=_DAY_MS)
def run_evaluation(evaluation_id: str) -> None:
    """Run one evaluation (a duplicate delivery finds it claimed and does nothing)."""
    runner.run(evaluation_id)
