"""Task events -> Task, TaskMetric and TaskTemplate read models (a task's trained model is
the model registry's: modelregistry.projections)."""

from eventlog import projections, rowfold
from eventlog.store import RecordedEvent
from tasks.models import Task, TaskMetric, TaskTemplate

_STATE_OF = {"TaskQueued": "queued", "TaskStarted": "running", "TaskSucceeded": "succeeded",
             "TaskStopped": "stopped", "TaskFailed": "failed", "TaskInterrupted": "interrupted"}


class TaskBoard(projections.Projection):
    name = "tasks.tasks"
    event_types = {"TaskCreated", "TaskQueued", "TaskStarted", "TaskStageChanged",
                   "TaskProgressed", "TaskEpochCompleted", "TaskStopRequested", "TaskSucceeded",
                   "TaskStopped", "TaskFailed", "TaskInterrupted"}
    models = [Task, TaskMetric]

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        data = event.data
        if event.type == "TaskCreated":
            rows[Task].create(
                id=event.stream_id, tenant_id=event.tenant_id, project_id=data["project"],
                job_id=data["job"], version=data["version"], name=data["name"],
                scenario=data["scenario"], model_name=data["model"],
                metric_name=data["metric_name"], train_dataset_id=data["train_dataset"],
                test_dataset_id=data["test_dataset"], output_path=data["output_path"],
                config=data["config"], target_metric=data["target_metric"],
                max_duration_s=data["max_duration_s"], billing_mode=data["billing_mode"],
                spec_id=data["spec"], spec_name=data["spec_name"], state="queued",
                created_at=event.recorded_at, updated_at=event.recorded_at,
                last_position=event.position)
            return
        changes: dict[str, object] = {"updated_at": event.recorded_at,
                                      "last_position": event.position}
        if event.type in _STATE_OF:
            changes["state"] = _STATE_OF[event.type]
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event, changes)
        if event.type == "TaskEpochCompleted":
            self._metrics(event, rows)
        rows[Task].update(event.stream_id, **changes)

    def _on_TaskQueued(self, event: RecordedEvent, changes: dict) -> None:
        changes.update(attempt=event.data["attempt"], stage="", stop_reason=None,
                       stop_requested="", failure_code="", failure_message="", finished_at=None)

    def _on_TaskStarted(self, event: RecordedEvent, changes: dict) -> None:
        changes.update(stage="preparing", node=event.data["node"], started_at=event.recorded_at)

    def _on_TaskStageChanged(self, event: RecordedEvent, changes: dict) -> None:
        changes["stage"] = event.data["stage"]

    def _on_TaskProgressed(self, event: RecordedEvent, changes: dict) -> None:
        data = event.data
        changes.update(stage="training", progress=data["progress"], epoch=data["epoch"],
                       step=data["step"], eta_s=data["eta_s"], elapsed_s=data["elapsed_s"])

    def _on_TaskEpochCompleted(self, event: RecordedEvent, changes: dict) -> None:
        data = event.data
        changes.update(epoch=data["epoch"], progress=data["progress"],
                       elapsed_s=data["elapsed_s"], eta_s=data["eta_s"],
                       best_metric=data["best_metric"], resources=data["resources"])

    @staticmethod
    def _metrics(event: RecordedEvent, rows: rowfold.Batch) -> None:
        data = event.data
        series = {"loss": data["train_loss"], **data["metrics"]}
        for i, (name, value) in enumerate(sorted(series.items())[:64]):
            rows[TaskMetric].create(id=event.position * 64 + i, tenant_id=event.tenant_id,
                                    task_id=event.stream_id, epoch=data["epoch"],
                                    name=name[:32], value=float(value))

    def _on_TaskStopRequested(self, event: RecordedEvent, changes: dict) -> None:
        changes["stop_requested"] = event.data["reason"]

    def _finish(self, event: RecordedEvent, changes: dict) -> None:
        data = event.data
        changes.update(stop_reason=data.get("stop_reason"), best_metric=data.get("best_metric"),
                       elapsed_s=data.get("elapsed_s", 0.0), finished_at=event.recorded_at,
                       eta_s=0.0, stage="")
        if data.get("model_id"):
            changes["model_id"] = data["model_id"]

    def _on_TaskSucceeded(self, event: RecordedEvent, changes: dict) -> None:
        self._finish(event, changes)
        changes.update(progress=1.0, warnings=event.data["warnings"])

    def _on_TaskStopped(self, event: RecordedEvent, changes: dict) -> None:
        self._finish(event, changes)

    def _on_TaskFailed(self, event: RecordedEvent, changes: dict) -> None:
        changes.update(failure_code=event.data["code"], failure_message=event.data["message"],
                       finished_at=event.recorded_at, stage="", eta_s=None)

    def _on_TaskInterrupted(self, event: RecordedEvent, changes: dict) -> None:
        changes.update(failure_code="interrupted", failure_message=event.data["reason"],
                       stage="", eta_s=None)


class TemplateList(projections.Projection):
    name = "tasks.templates"
    event_types = {"TaskTemplateSaved"}
    models = [TaskTemplate]

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        data = event.data
        rows[TaskTemplate].create(id=event.stream_id, tenant_id=event.tenant_id,
                                  name=data["name"], parameters=data["parameters"],
                                  source_task_id=data["source_task"],
                                  created_at=event.recorded_at)


projections.register(TaskBoard())
projections.register(TemplateList())
