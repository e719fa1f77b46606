"""The evaluation worker's progress reports, a command on the evaluation's stream that checks the
aggregate's rules first: only the run that owns the evaluation (running, at its attempt) writes.

The worker keeps the aggregate it claimed with and catches it up before each write, so a long
run's reports do not each replay the stream.
"""

import logging
import time

from django.conf import settings

from evaluation.aggregates import EvaluationAggregate
from evaluation.events import EvaluationProgressed
from eventlog.aggregates import retry_on_conflict
from eventlog.store import load_stream

log = logging.getLogger(__name__)


class Run:
    """One claimed run of an evaluation, as its worker reports on it."""

    def __init__(self, aggregate: EvaluationAggregate) -> None:
        self.aggregate, self.attempt = aggregate, aggregate.attempt
        self.started = time.monotonic()
        self.last_report: float | None = None

    @property
    def current(self) -> bool:
        """Whether this run still owns the evaluation."""
        return self.aggregate.state == "running" and self.aggregate.attempt == self.attempt

    def progressed(self, done: int, total: int) -> bool:
        """Report `done` of `total` images, at most once per TASK_PROGRESS_INTERVAL_S (the
        last image always); False when throttled or refused (the run no longer owns it)."""
        now = time.monotonic()
        last = done >= total
        if (not last and self.last_report is not None
                and now - self.last_report < settings.TASK_PROGRESS_INTERVAL_S):
            return False
        self.last_report = now
        elapsed = now - self.started
        eta = round(elapsed / done * (total - done), 1) if done else None
        event = EvaluationProgressed(images_done=done, images_total=total, eta_s=eta,
                                     progress=round(done / total, 4) if total else 1.0)

        def once() -> bool:
            for recorded in load_stream(self.aggregate.stream.id,
                                        after_version=self.aggregate.version):
                self.aggregate.apply(recorded)
            if not self.current:
                log.info("evaluation %s: progress of attempt %s refused, it is %s at attempt "
                         "%s", self.aggregate.stream.id, self.attempt, self.aggregate.state,
                         self.aggregate.attempt)
                return False
            self.aggregate.append(event)
            return True

        return retry_on_conflict(once)
