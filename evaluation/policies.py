"""What evaluations do when other apps act: a training task that produced a model gets its
automatic evaluation; billing stopping a run's meter stops the run."""

import uuid

from django.conf import settings

from billing import api as billing
from evaluation.commands import RESOURCE_TYPE, evaluate_after_training, stop_evaluation
from evaluation.models import Evaluation
from eventlog import policies
from eventlog.store import RecordedEvent
from tasks import api as tasks


class EvaluateAfterTraining(policies.Policy):
    """Follows TaskSucceeded (TASK_AUTO_EVALUATE): the run is part of the task's bill."""

    name = "evaluation.after_training"
    event_types = {"TaskSucceeded"}

    def react(self, event: RecordedEvent) -> None:
        """Queue the automatic evaluation of the task's new model (once per model)."""
        if not settings.TASK_AUTO_EVALUATE:
            return
        task = tasks.task(event.tenant_id, event.stream_id)
        if task is not None:
            evaluate_after_training(task, event.data["model_id"])


class StopShortOfFunds(policies.Policy):
    """Follows billing's MeterStopped: the run ends `stopped` with the reason; its worker gives
    up at its next batch."""

    name = "evaluation.stop_short_of_funds"
    event_types = {"MeterStopped"}

    def react(self, event: RecordedEvent) -> None:
        """Stop the run billing stopped metering (an ended run stays as it is)."""
        stopped = billing.forced_stop(event)
        if stopped is None or stopped.resource_type != RESOURCE_TYPE:
            return
        row = Evaluation.objects.for_tenant(event.tenant_id).filter(
            id=uuid.UUID(stopped.resource_id)).first()
        if row is not None:
            stop_evaluation(row.tenant_id, row.id, stopped.reason)


policies.register(EvaluateAfterTraining())
policies.register(StopShortOfFunds())
