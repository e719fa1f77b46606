"""Evaluation jobs: on the CPU queue, or the GPU queue when a GPU spec was asked for."""

from evaluation import recovery, runner  # noqa: F401  (registers its recoverer)
from evaluation.commands import RUN

_DAY_MS = 24 * 3600 * 1000


@RUN["cpu"].actor(max_retries=0, time_limit=_DAY_MS)
def run_evaluation(evaluation_id: str) -> None:
    """Run one evaluation (a duplicate delivery finds it claimed and does nothing)."""
    runner.run(evaluation_id)


@RUN["gpu"].actor(max_retries=0, time_limit=_DAY_MS)
def run_evaluation_on_gpu(evaluation_id: str) -> None:
    """Run one evaluation on a GPU worker."""
    runner.run(evaluation_id)
