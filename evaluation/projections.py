"""Evaluation events -> the Evaluation read model."""

from evaluation.models import Evaluation
from eventlog import projections, rowfold
from eventlog.store import RecordedEvent

_STATE_OF = {"EvaluationQueued": "queued", "EvaluationStarted": "running",
             "EvaluationSucceeded": "succeeded", "EvaluationFailed": "failed",
             "EvaluationStopped": "stopped", "EvaluationInterrupted": "interrupted"}
PROGRESSED = "EvaluationProgressed"  # moves the progress fields, never the state


class EvaluationBoard(projections.Projection):
    """One row per evaluation run."""

    name = "evaluation.evaluations"
    event_types = {"EvaluationCreated", PROGRESSED, *_STATE_OF}
    models = [Evaluation]

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        """Fold one event into its row."""
        data = event.data
        if event.type == "EvaluationCreated":
            rows[Evaluation].create(
                id=event.stream_id, tenant_id=event.tenant_id, project_id=data["project"],
                model_id=data["model"], task_id=data.get("task"), dataset_id=data["dataset"],
                scenario=data["scenario"],
                options=data["options"], spec_id=data["spec"], spec_name=data["spec_name"],
                billing_mode=data["billing_mode"], state="queued",
                created_at=event.recorded_at, updated_at=event.recorded_at,
                last_position=event.position)
            return
        if event.type == PROGRESSED:
            rows[Evaluation].update(
                event.stream_id, progress=data["progress"], images_done=data["images_done"],
                images_total=data["images_total"], eta_s=data["eta_s"],
                updated_at=event.recorded_at, last_position=event.position)
            return
        changes: dict[str, object] = {"state": _STATE_OF[event.type],
                                      "updated_at": event.recorded_at,
                                      "last_position": event.position}
        if event.type == "EvaluationStarted":
            changes.update(node=data["node"], started_at=event.recorded_at)
        elif event.type == "EvaluationSucceeded":
            changes.update(summary=data["summary"], metrics=data["metrics"],
                           results_key=data["results_key"], finished_at=event.recorded_at,
                           progress=1.0, eta_s=0.0)
        elif event.type == "EvaluationFailed":
            changes.update(failure_code=data["code"], failure_message=data["message"],
                           finished_at=event.recorded_at)
        elif event.type == "EvaluationInterrupted":
            changes.update(failure_code="interrupted", failure_message=data["reason"])
        elif event.type == "EvaluationQueued":  # a run again starts from nothing
            changes.update(failure_code="", failure_message="", progress=0.0, images_done=0,
                           eta_s=None)
        elif event.type == "EvaluationStopped":
            changes.update(stop_reason=data["reason"], finished_at=event.recorded_at)
        rows[Evaluation].update(event.stream_id, **changes)


projections.register(EvaluationBoard())
