"""The API's resources as dataclasses. Each field is the answer's field of the same name (the
tests check every one against the published schema's component named in `COMPONENT`); a field
the server adds later is ignored, so an older client keeps working."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Resource")


@dataclass
class Resource:
    """Base: `from_json` keeps the fields this class knows."""

    COMPONENT: ClassVar[str] = ""

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any]) -> T:
        """The resource from an answer's object."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class Project(Resource):
    COMPONENT: ClassVar[str] = "ProjectOut"
    id: str
    name: str
    description: str = ""
    created_at: str | None = None
    archived_at: str | None = None
    version: int | None = None


@dataclass
class Dataset(Resource):
    COMPONENT: ClassVar[str] = "DatasetOut"
    id: str
    name: str
    kind: str
    format: str
    project: str | None = None  # none for a built-in sample
    version: int | None = None
    state: str = ""
    image_count: int | None = None
    labels: list[Any] = field(default_factory=list)  # {name, count} per label
    errors: list[Any] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)
    size_bytes: int | None = None
    created_at: str | None = None


@dataclass
class Task(Resource):
    COMPONENT: ClassVar[str] = "TaskOut"
    id: str
    project: str
    name: str
    scenario: str
    algorithm: str
    state: str
    version: str = ""
    train_dataset: str | None = None
    test_dataset: str | None = None
    metric_name: str = ""
    epochs: int | None = None
    billing_mode: str = ""
    spec_name: str = ""
    stage: str | None = None
    stop_reason: str | None = None
    progress: float | None = None
    epoch: int | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    best_metric: float | None = None
    model: str | None = None
    failure: dict[str, str] | None = None
    created_at: str | None = None
    finished_at: str | None = None

    ENDED: ClassVar[frozenset[str]] = frozenset({"succeeded", "failed", "stopped"})

    @property
    def ended(self) -> bool:
        """Whether the task will not change state again by itself."""
        return self.state in self.ENDED


@dataclass
class TrainedModel(Resource):
    COMPONENT: ClassVar[str] = "ModelOut"
    id: str
    task: str
    project: str
    version: str
    scenario: str
    algorithm: str
    labels: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    input_size: list[int] = field(default_factory=list)
    formats: dict[str, Any] = field(default_factory=dict)  # per format: available, or why not
    created_at: str | None = None


@dataclass
class Evaluation(Resource):
    COMPONENT: ClassVar[str] = "EvaluationOut"
    id: str
    state: str
    project: str
    model: str
    dataset: str
    scenario: str = ""
    task: str | None = None
    billing_mode: str = ""
    summary: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    failure: dict[str, str] | None = None
    created_at: str | None = None
    finished_at: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the evaluation will not change state again by itself."""
        return self.state in ("succeeded", "failed", "stopped")


@dataclass
class Service(Resource):
    COMPONENT: ClassVar[str] = "ServiceOut"
    id: str
    name: str
    state: str
    project: str
    model: str
    spec_name: str = ""
    billing_mode: str = ""
    instances: Any = None
    key_prefix: str = ""
    failure: dict[str, str] | None = None
    created_at: str | None = None
    running_at: str | None = None


@dataclass
class Wallet(Resource):
    COMPONENT: ClassVar[str] = "WalletOut"
    currency: str
    balance: int
    frozen: int
    available: int


@dataclass
class Usage(Resource):
    COMPONENT: ClassVar[str] = "UsageOut"
    results: list[dict[str, Any]]
    total: int
    seconds: float
    currency: str
    group_by: str


@dataclass
class Prediction(Resource):
    COMPONENT: ClassVar[str] = "PredictOut"
    predictions: list[dict[str, Any]]
    model: str


@dataclass
class Event(Resource):
    """One fact of the tenant's event log, as the feed and the websocket carry it."""

    COMPONENT: ClassVar[str] = "EventOut"
    position: int
    stream_type: str
    stream_id: str
    type: str
    data: dict[str, Any]
    version: int | None = None
    recorded_at: str | None = None
