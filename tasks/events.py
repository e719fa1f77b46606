"""Events of the task stream (stream id = the task id) and of saved templates."""

from dataclasses import dataclass, field
from typing import Any

from eventlog.schema import event, upcaster

# The hold-out split training made before its events said which: DatasetIndex.split's defaults.
FORMER_VALIDATION_FRACTION = 0.2
FORMER_SPLIT_SEED = 0


@event("TaskCreated")
@dataclass(frozen=True)
class TaskCreated:
    project: str
    job: str
    version: int
    name: str
    scenario: str
    model: str
    metric_name: str
    train_dataset: str
    test_dataset: str | None
    output_path: str
    config: dict[str, Any]
    target_metric: float | None
    max_duration_s: int
    billing_mode: str
    spec: str
    spec_name: str


@event("TaskQueued")
@dataclass(frozen=True)
class TaskQueued:
    attempt: int
    meter_id: str


@event("TaskStarted")
@dataclass(frozen=True)
class TaskStarted:
    attempt: int
    node: str


@event("TaskStageChanged")
@dataclass(frozen=True)
class TaskStageChanged:
    stage: str


@event("TaskProgressed")
@dataclass(frozen=True)
class TaskProgressed:
    progress: float
    epoch: int
    step: int
    eta_s: float
    elapsed_s: float
    loss: float
    lr: float
    samples_per_s: float
    metrics: dict[str, float] = field(default_factory=dict)


@event("TaskEpochCompleted")
@dataclass(frozen=True)
class TaskEpochCompleted:
    epoch: int
    train_loss: float
    metrics: dict[str, float]
    lr: float
    elapsed_s: float
    eta_s: float
    progress: float
    best_metric: float | None
    resources: dict[str, Any]


@event("TaskStopRequested")
@dataclass(frozen=True)
class TaskStopRequested:
    reason: str  # "user" | "insufficient_funds"


@event("TaskSucceeded", version=2)
@dataclass(frozen=True)
class TaskSucceeded:
    stop_reason: str | None
    best_metric: float | None
    elapsed_s: float
    model_id: str
    artifact_key: str
    labels: list[str]
    metrics: dict[str, Any]
    input_size: list[int]
    warnings: list[str]
    # v2: the train/validation split the training made (fraction held out, seed)
    validation_fraction: float = FORMER_VALIDATION_FRACTION
    split_seed: int = FORMER_SPLIT_SEED
    # the model's downloadable formats: {format: {"file"...} | {"unavailable": reason}}
    formats: dict[str, Any] = field(default_factory=dict)


@event("TaskStopped", version=2)
@dataclass(frozen=True)
class TaskStopped:
    stop_reason: str
    best_metric: float | None
    elapsed_s: float
    model_id: str | None = None
    artifact_key: str = ""
    labels: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    input_size: list[int] = field(default_factory=list)
    validation_fraction: float = FORMER_VALIDATION_FRACTION  # v2, as TaskSucceeded
    split_seed: int = FORMER_SPLIT_SEED
    formats: dict[str, Any] = field(default_factory=dict)  # as TaskSucceeded


@upcaster("TaskSucceeded", from_version=1)
def _split_of_a_v1_success(data: dict[str, Any]) -> dict[str, Any]:
    """A v1 success trained with the split's defaults: say so."""
    return {"validation_fraction": FORMER_VALIDATION_FRACTION, "split_seed": FORMER_SPLIT_SEED,
            **data}


@upcaster("TaskStopped", from_version=1)
def _split_of_a_v1_stop(data: dict[str, Any]) -> dict[str, Any]:
    """A v1 stop trained with the split's defaults: say so."""
    return {"validation_fraction": FORMER_VALIDATION_FRACTION, "split_seed": FORMER_SPLIT_SEED,
            **data}


@event("TaskFailed")
@dataclass(frozen=True)
class TaskFailed:
    code: str
    message: str


@event("TaskInterrupted")
@dataclass(frozen=True)
class TaskInterrupted:
    attempt: int
    reason: str


@event("TaskTemplateSaved")
@dataclass(frozen=True)
class TaskTemplateSaved:
    name: str
    parameters: dict[str, Any]
    source_task: str | None
