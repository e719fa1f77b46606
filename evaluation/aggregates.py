"""The evaluation aggregate: what commands and the worker check before appending."""

from eventlog.aggregates import Aggregate


class EvaluationAggregate(Aggregate):
    """State of one evaluation stream."""

    stream_type = "evaluation"
    not_found_message = "Evaluation not found."

    state = ""
    meter_id = ""

    def when_EvaluationCreated(self, data: dict) -> None:
        """A new run."""
        self.state = "created"

    def when_EvaluationQueued(self, data: dict) -> None:
        """Waiting for a worker."""
        self.state, self.meter_id = "queued", data["meter_id"]

    def when_EvaluationStarted(self, data: dict) -> None:
        """Claimed."""
        self.state = "running"

    def when_EvaluationSucceeded(self, data: dict) -> None:
        """Done with a report."""
        self.state = "succeeded"

    def when_EvaluationFailed(self, data: dict) -> None:
        """Done without one."""
        self.state = "failed"

    def when_EvaluationStopped(self, data: dict) -> None:
        """Stopped before its end."""
        self.state = "stopped"
