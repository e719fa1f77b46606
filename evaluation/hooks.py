"""What evaluations do when other apps act: billing stops a run short of funds; a training task
that produced a model gets its automatic evaluation."""

import contextlib
import logging
import uuid

from django.conf import settings
from django.dispatch import receiver

from billing import api as billing
from core.errors import NotFound
from evaluation.commands import RESOURCE_TYPE, evaluate_after_training, stop_evaluation
from evaluation.models import Evaluation
from tasks.signals import model_trained

log = logging.getLogger("evaluation.hooks")


@billing.on_forced_stop(RESOURCE_TYPE)
def stop_for_lack_of_funds(evaluation_id: str, reason: str) -> None:
    """The run ends `stopped` with the reason; its worker gives up at its next batch."""
    with contextlib.suppress(ValueError):
        evaluation_id = str(uuid.UUID(str(evaluation_id)))
        row = Evaluation.objects.unscoped().filter(id=evaluation_id).first()
        if row is not None:
            with contextlib.suppress(NotFound):
                stop_evaluation(row.tenant_id, row.id, reason)


@receiver(model_trained)
def evaluate_new_model(sender: object, task: object, model_id: str, **_: object) -> None:
    """Queue the automatic evaluation of a task's model (TASK_AUTO_EVALUATE)."""
    if not settings.TASK_AUTO_EVALUATE:
        return
    try:
        evaluate_after_training(task, model_id)
    except Exception:  # the task succeeded whatever happens here; the user can evaluate by hand
        log.exception("the automatic evaluation of model %s could not be queued", model_id)
