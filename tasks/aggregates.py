"""The task aggregate: what commands and the worker check before appending."""

from eventlog.aggregates import Aggregate


class TaskAggregate(Aggregate):
    stream_type = "task"
    not_found_message = "Task not found."

    state = ""
    attempt = 0
    meter_id = ""
    stop_requested = ""
    data: dict

    def when_TaskCreated(self, data: dict) -> None:
        self.data = data
        self.state = "created"

    def when_TaskQueued(self, data: dict) -> None:
        self.state, self.attempt, self.meter_id = "queued", data["attempt"], data["meter_id"]
        self.stop_requested = ""

    def when_TaskStarted(self, data: dict) -> None:
        self.state = "running"

    def when_TaskStopRequested(self, data: dict) -> None:
        self.stop_requested = data["reason"]

    def when_TaskSucceeded(self, data: dict) -> None:
        self.state = "succeeded"

    def when_TaskStopped(self, data: dict) -> None:
        self.state = "stopped"

    def when_TaskFailed(self, data: dict) -> None:
        self.state = "failed"

    def when_TaskInterrupted(self, data: dict) -> None:
        self.state = "interrupted"

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")
