"""Events of the service stream (stream type "service", stream id = the service id)."""

from dataclasses import dataclass
from typing import Any

from eventlog.schema import event


@event("ServiceCreated")
@dataclass(frozen=True)
class ServiceCreated:
    """A model is published: it deploys on `instances` instances of a spec."""

    project: str
    model: str
    name: str
    spec: str
    spec_name: str
    billing_mode: str
    max_runtime_s: int
    instances: int
    options: dict[str, Any]


@event("ServiceMeterStarted")
@dataclass(frozen=True)
class ServiceMeterStarted:
    """Billing runs from here to the service's stop (postpaid: 2 hours frozen)."""

    meter_id: str


@event("ServiceKeyIssued")
@dataclass(frozen=True)
class ServiceKeyIssued:
    """A new prediction key (only its digest is kept); it replaces the previous one."""

    prefix: str
    digest: str


@event("ServiceInstanceStarted")
@dataclass(frozen=True)
class ServiceInstanceStarted:
    """An instance worker claimed its slot and is loading the model."""

    instance: int
    node: str


@event("ServiceInstanceReady")
@dataclass(frozen=True)
class ServiceInstanceReady:
    """An instance has the model loaded and takes requests (the first makes it running)."""

    instance: int
    model: str


@event("ServiceInstanceExited")
@dataclass(frozen=True)
class ServiceInstanceExited:
    """An instance stopped taking requests."""

    instance: int
    reason: str


@event("ServiceUpdateStarted")
@dataclass(frozen=True)
class ServiceUpdateStarted:
    """Instances switch to another model version, one at a time, serving throughout."""

    update: str
    model: str
    previous_model: str


@event("ServiceUpdated")
@dataclass(frozen=True)
class ServiceUpdated:
    """Every instance serves the new model."""

    update: str
    model: str


@event("ServiceStopRequested")
@dataclass(frozen=True)
class ServiceStopRequested:
    """The service is to stop: user, max_runtime, insufficient_funds or lost."""

    reason: str


@event("ServiceStopped")
@dataclass(frozen=True)
class ServiceStopped:
    """No instance serves any more; billing has stopped."""

    reason: str


@event("ServiceFailed")
@dataclass(frozen=True)
class ServiceFailed:
    """The service cannot serve (its model cannot be loaded, ...); billing has stopped."""

    code: str
    message: str


@event("ServiceTrafficRecorded")
@dataclass(frozen=True)
class ServiceTrafficRecorded:
    """A closed minute of predictions (what monitoring shows), for live dashboards."""

    minute: str
    requests: int
    errors: int
    throttled: int
    latency_ms: dict[str, Any]
