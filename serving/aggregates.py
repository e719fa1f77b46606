"""The service aggregate: what commands and instances check before appending."""

from typing import Any

from eventlog.aggregates import Aggregate

ENDED = ("stopped", "failed")
LOST = "lost"  # the exit reason of an instance whose worker went silent
RESTARTED = "process_restarted"  # ... whose worker was `make run` itself, started again


class ServiceAggregate(Aggregate):
    """State of one service stream."""

    stream_type = "service"
    not_found_message = "Service not found."

    state = ""
    model = ""
    meter_id = ""
    instances = 0
    update = ""
    traffic_until = ""  # the last minute reported by ServiceTrafficRecorded (ISO)
    lost = 0  # instances given up for lost (their worker died), each started again

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: set[int] = set()
        self.ready: dict[int, str] = {}  # instance -> model it serves
        self.exited: set[int] = set()

    def when_ServiceCreated(self, data: dict) -> None:
        """Deploying."""
        self.state, self.model, self.instances = "deploying", data["model"], data["instances"]

    def when_ServiceMeterStarted(self, data: dict) -> None:
        """Billed from now."""
        self.meter_id = data["meter_id"]

    def when_ServiceKeyIssued(self, data: dict) -> None:
        """Keys live in their table."""

    def when_ServiceInstanceStarted(self, data: dict) -> None:
        """An instance claimed its slot (again, after it was lost)."""
        self.started.add(data["instance"])
        self.exited.discard(data["instance"])

    def when_ServiceInstanceReady(self, data: dict) -> None:
        """An instance serves `model`."""
        self.ready[data["instance"]] = data["model"]
        if self.state == "deploying":
            self.state = "running"

    def when_ServiceInstanceExited(self, data: dict) -> None:
        """An instance is gone."""
        self.exited.add(data["instance"])
        self.ready.pop(data["instance"], None)
        if data["reason"] == LOST:
            self.lost += 1

    def when_ServiceUpdateStarted(self, data: dict) -> None:
        """Switching model."""
        self.state, self.model, self.update = "updating", data["model"], data["update"]

    def when_ServiceUpdated(self, data: dict) -> None:
        """Every instance serves the new model."""
        self.state, self.update = "running", ""

    def when_ServiceStopRequested(self, data: dict) -> None:
        """Stopping."""
        self.state = "stopping"

    def when_ServiceStopped(self, data: dict) -> None:
        """Stopped."""
        self.state = "stopped"

    def when_ServiceFailed(self, data: dict) -> None:
        """Failed."""
        self.state = "failed"

    def when_ServiceTrafficRecorded(self, data: dict) -> None:
        """A minute of traffic was reported."""
        self.traffic_until = data["minute"]
