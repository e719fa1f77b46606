"""Events that make a model -> the TrainedModel read model.

A training task's `TaskSucceeded` or `TaskStopped` that carries a `model_id` registers the model;
where it comes from (project, version, scenario, algorithm, datasets) is the task's own
`TaskCreated`, read from the log rather than from the tasks read model, so that this projection
rebuilds on its own whatever order projections are rebuilt in. Each event type has a reader
returning the row's fields, so that another way in (an imported model) is one more reader.
"""

from collections.abc import Callable
from typing import Any

from eventlog import projections
from eventlog.models import Event
from eventlog.store import RecordedEvent, recorded
from modelregistry.models import TrainedModel


def _created_of_task(event: RecordedEvent) -> dict[str, Any]:
    """The TaskCreated data of the task stream `event` belongs to."""
    row = Event.objects.filter(stream_id=event.stream_id, type="TaskCreated").order_by(
        "version").first()
    if row is None:
        raise LookupError(f"task {event.stream_id} has no TaskCreated event")
    return recorded(row).data


def _trained(event: RecordedEvent) -> dict[str, Any] | None:
    """The model a training task ended with (TaskSucceeded, TaskStopped), or None."""
    data = event.data
    if not data.get("model_id"):
        return None
    task = _created_of_task(event)
    return {"id": data["model_id"], "project_id": task["project"], "task_id": event.stream_id,
            "version": task["version"], "scenario": task["scenario"],
            "model_name": task["model"], "labels": data["labels"], "metrics": data["metrics"],
            "artifact_key": data["artifact_key"], "input_size": data["input_size"],
            "train_dataset_id": task["train_dataset"], "test_dataset_id": task["test_dataset"],
            "validation_fraction": data["validation_fraction"],
            "split_seed": data["split_seed"],
            # a model registered before formats were recorded has its artifact only
            "formats": data.get("formats") or {"artifact": {"key": data["artifact_key"]}}}


def _imported(event: RecordedEvent) -> dict[str, Any]:
    """A model trained elsewhere: its own stream stands where a task would."""
    data = event.data
    return {"id": event.stream_id, "project_id": data["project"], "task_id": event.stream_id,
            "version": 1, "scenario": data["scenario"], "model_name": data["algorithm"],
            "labels": data["labels"], "metrics": {}, "artifact_key": data["artifact_key"],
            "input_size": data["input_size"], "train_dataset_id": None,
            "test_dataset_id": None, "formats": data.get("formats") or {
                "artifact": {"key": data["artifact_key"]}}, "origin": "imported"}


READERS: dict[str, Callable[[RecordedEvent], dict[str, Any] | None]] = {
    "ModelImported": _imported,
    "TaskSucceeded": _trained,
    "TaskStopped": _trained,
}


class ModelCatalogue(projections.Projection):
    name = "modelregistry.models"
    event_types = set(READERS)
    models = [TrainedModel]

    def handle(self, event: RecordedEvent) -> None:
        fields = READERS[event.type](event)
        if fields is not None:
            TrainedModel.objects.create(tenant_id=event.tenant_id, created_at=event.recorded_at,
                                        **fields)


projections.register(ModelCatalogue())
