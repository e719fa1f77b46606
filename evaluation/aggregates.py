"""The evaluation aggregate: what commands and the worker check before appending."""

from eventlog.aggregates import Aggregate


class EvaluationAggregate(Aggregate):
    """State of one evaluation stream."""

    stream_type = "evaluation"
    not_found_message = "Evaluation not found."

    state = ""
    meter_id = ""
    attempt = 0  # how many times a worker claimed it
    billing_mode = ""
    spec = ""
    project = ""

    def when_EvaluationCreated(self, data: dict) -> None:
        """A new run."""
        self.state = "created"
        self.billing_mode, self.spec, self.project = (data["billing_mode"], data["spec"],
                                                      data["project"])

    def when_EvaluationQueued(self, data: dict) -> None:
        """Waiting for a worker."""
        self.state, self.meter_id = "queued", data["meter_id"]

    def when_EvaluationStarted(self, data: dict) -> None:
        """Claimed."""
        self.state = "running"
        self.attempt += 1

    def when_EvaluationInterrupted(self, data: dict) -> None:
        """Its worker died."""
        self.state = "interrupted"

    def when_EvaluationSucceeded(self, data: dict) -> None:
        """Done with a report."""
        self.state = "succeeded"

    def when_EvaluationFailed(self, data: dict) -> None:
        """Done without one."""
        self.state = "failed"

    def when_EvaluationStopped(self, data: dict) -> None:
        """Stopped before its end."""
        self.state = "stopped"
