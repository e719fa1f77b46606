"""Task jobs: train an attempt on the GPU queue. Attempts whose worker died are found by the
lease sweep (core.lifecycle) through the kind tasks.recovery registers."""

from tasks import recovery, runner  # noqa: F401  (recovery registers its recoverer and kind)
from tasks.commands import TRAIN

# A training attempt ends itself (max_duration_s); the broker must not kill it first.
_WEEK_MS = 7 * 24 * 3600 * 1000


@TRAIN.actor(max_retries=0, time_limit=_WEEK_MS)
def train_task(task_id: str, attempt: int) -> None:
    """Run one attempt of a task (a duplicate delivery finds it claimed and does nothing)."""
    runner.run_attempt(task_id, attempt)
