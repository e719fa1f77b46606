"""Events of the evaluation stream (stream type "evaluation", stream id = the evaluation id)."""

from dataclasses import dataclass
from typing import Any

from eventlog.schema import event


@event("EvaluationCreated")
@dataclass(frozen=True)
class EvaluationCreated:
    """A model is to be evaluated on a dataset at an operating point (iou, score_threshold)."""

    project: str
    model: str
    dataset: str
    scenario: str
    options: dict[str, Any]
    spec: str
    spec_name: str
    billing_mode: str  # postpaid, prepaid, or "included" (the automatic run after training)
    task: str | None = None  # the task whose model this is


@event("EvaluationQueued")
@dataclass(frozen=True)
class EvaluationQueued:
    """The run waits on the CPU queue; its billing meter is running."""

    meter_id: str


@event("EvaluationStarted")
@dataclass(frozen=True)
class EvaluationStarted:
    """A worker claimed the run."""

    node: str


@event("EvaluationProgressed")
@dataclass(frozen=True)
class EvaluationProgressed:
    """How far the running worker got (at most one per TASK_PROGRESS_INTERVAL_S, as a task's
    progress): images predicted of the images to predict, and the time left at this pace."""

    images_done: int
    images_total: int
    eta_s: float | None
    progress: float  # images_done / images_total, 0..1


@event("EvaluationInterrupted")
@dataclass(frozen=True)
class EvaluationInterrupted:
    """The worker running it went silent (it died); billed up to its last heartbeat. An
    EvaluationQueued follows when it is tried again, else EvaluationFailed."""

    attempt: int
    reason: str


@event("EvaluationSucceeded")
@dataclass(frozen=True)
class EvaluationSucceeded:
    """The report at the run's operating point; the stored results let reports move it."""

    summary: dict[str, Any]
    metrics: dict[str, Any]
    results_key: str


@event("EvaluationFailed")
@dataclass(frozen=True)
class EvaluationFailed:
    """The run ended without a report."""

    code: str
    message: str


@event("EvaluationStopped")
@dataclass(frozen=True)
class EvaluationStopped:
    """The run was stopped before its end (e.g. insufficient_funds); no report."""

    reason: str
