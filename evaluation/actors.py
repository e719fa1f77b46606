"""Evaluation jobs: on the CPU queue, or the GPU queue when a GPU spec was asked for."""

import dramatiq

from core.broker import CPU_QUEUE, GPU_QUEUE
from evaluation import recovery, runner  # noqa: F401  (registers its recoverer)

_DAY_MS = 24 * 3600 * 1000


@dramatiq.actor(queue_name=CPU_QUEUE, max_retries=0, time_limit=_DAY_MS)
def run_evaluation(evaluation_id: str) -> None:
    """Run one evaluation (a duplicate delivery finds it claimed and does nothing)."""
    runner.run(evaluation_id)


@dramatiq.actor(queue_name=GPU_QUEUE, max_retries=0, time_limit=_DAY_MS)
def run_evaluation_on_gpu(evaluation_id: str) -> None:
    """Run one evaluation on a GPU worker."""
    runner.run(evaluation_id)
