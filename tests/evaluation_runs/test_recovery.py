"""Evaluations found again after a crash (issue 16 item 8): a running evaluation whose worker went
silent is interrupted, billed up to its last heartbeat and run again (at most three runs, then
failed with the reason); a queued one whose message was lost is sent again; a duplicate
delivery does nothing."""

from datetime import timedelta

import dramatiq
import pytest
from django.core.management import call_command
from django.utils import timezone

from billing import api as billing
from billing.models import Meter
from core import leases, lifecycle, recovery
from core.models import WorkLease
from evaluation import runner
from evaluation.models import Evaluation
from evaluation.recovery import MAX_ATTEMPTS, recover_evaluations
from eventlog.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def create(api, account, model, dataset) -> str:
    response = api.as_(account).post("/api/v1/evaluations/", {
        "model": str(model.id), "dataset": dataset["id"]}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def claimed_by_a_worker_that_died(evaluation_id: str, silent_for_s: float = 60):
    """A worker claimed the run, then died: its lease went silent `silent_for_s` ago."""
    assert runner.claim(evaluation_id, "dead-host:1") is not None
    last_beat = timezone.now() - timedelta(seconds=silent_for_s)
    leases.claim(runner.lease_key(evaluation_id), "dead-host:1:x", stale_after_s=1)
    WorkLease.objects.filter(key=runner.lease_key(evaluation_id)).update(last_seen_at=last_beat)
    return last_beat


def sweep_lost() -> int:
    """The lease sweep (core.lifecycle) of the evaluation kind; how many runs it queued again."""
    return lifecycle.sweep()["evaluation"]


def types_of(evaluation_id: str) -> list[str]:
    """The run's events, less its progress reports (tests/evaluation_runs/test_progress.py)."""
    return list(Event.objects.filter(stream_id=evaluation_id).exclude(
        type="EvaluationProgressed").order_by("version").values_list("type", flat=True))


def test_a_run_whose_worker_died_is_billed_to_its_last_heartbeat_and_run_again(
        api, funded, classifier, digits_dataset, cpu_spec, settings):
    settings.WORK_LEASE_TIMEOUT_S = 5.0
    evaluation_id = create(api, funded, classifier, digits_dataset)
    dramatiq.get_broker().flush_all()
    last_beat = claimed_by_a_worker_that_died(evaluation_id)

    assert sweep_lost() == 1

    first, second = Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=evaluation_id).order_by("started_at")
    assert (first.state, first.stop_reason, first.frozen) == ("stopped", "interrupted", 0)
    assert first.stopped_at == last_beat  # the time the worker was gone is not charged
    assert second.state == "running" and second.frozen > 0
    row = Evaluation.objects.unscoped().get(id=evaluation_id)
    assert (row.state, row.failure_code) == ("queued", "")
    assert sweep_lost() == 0  # running no more
    assert recover_evaluations(recovery.Sweep()) == 0  # queued a moment ago: not sent again

    [message] = list(dramatiq.get_broker().queues["cpu"].queue)  # the run sent again
    assert dramatiq.Message.decode(message).args == (evaluation_id,)
    assert runner.run(evaluation_id) == "succeeded"
    assert types_of(evaluation_id) == [
        "EvaluationCreated", "EvaluationQueued", "EvaluationStarted", "EvaluationInterrupted",
        "EvaluationQueued", "EvaluationStarted", "EvaluationSucceeded"]
    second.refresh_from_db()
    assert (second.state, second.stop_reason, second.frozen) == ("stopped", "completed", 0)
    assert second.started_at >= first.stopped_at  # no second billed twice

    before = list(Evaluation.objects.unscoped().filter(id=evaluation_id).values())
    call_command("rebuild_projections", "evaluation.evaluations")
    assert list(Evaluation.objects.unscoped().filter(id=evaluation_id).values()) == before


def test_after_its_last_attempt_a_lost_run_fails_with_the_reason(
        api, funded, classifier, digits_dataset, cpu_spec, settings):
    settings.WORK_LEASE_TIMEOUT_S = 5.0
    evaluation_id = create(api, funded, classifier, digits_dataset)
    dramatiq.get_broker().flush_all()
    for _ in range(MAX_ATTEMPTS):
        claimed_by_a_worker_that_died(evaluation_id)
        sweep_lost()

    row = Evaluation.objects.unscoped().get(id=evaluation_id)
    assert (row.state, row.failure_code) == ("failed", "worker_lost")
    assert types_of(evaluation_id).count("EvaluationInterrupted") == MAX_ATTEMPTS
    meters = Meter.objects.for_tenant(funded.tenant_id).filter(resource_id=evaluation_id)
    assert len(meters) == MAX_ATTEMPTS
    assert all(m.state == "stopped" and m.frozen == 0 for m in meters)
    assert runner.run(evaluation_id) == "skipped"  # a late delivery does nothing


def test_a_queued_run_whose_message_was_lost_is_sent_again_and_runs_once(
        api, funded, classifier, digits_dataset, cpu_spec, settings):
    settings.RECOVERY_REQUEUE_AFTER_S = 60.0
    evaluation_id = create(api, funded, classifier, digits_dataset)
    dramatiq.get_broker().flush_all()  # the broker died with its messages
    assert recover_evaluations(recovery.Sweep()) == 0  # it may still be on its way
    later = recovery.Sweep(now=timezone.now() + timedelta(seconds=61))
    assert recover_evaluations(later) == 1

    runner.run(evaluation_id)  # the message sent again
    assert runner.run(evaluation_id) == "skipped"  # and the original, redelivered after all
    assert types_of(evaluation_id).count("EvaluationStarted") == 1
    assert Meter.objects.for_tenant(funded.tenant_id).filter(resource_id=evaluation_id).count() == 1


def test_a_queued_run_whose_meter_vanished_is_queued_again_on_a_new_meter(
        api, funded, classifier, digits_dataset, cpu_spec, settings):
    settings.RECOVERY_REQUEUE_AFTER_S = 60.0
    evaluation_id = create(api, funded, classifier, digits_dataset)
    dramatiq.get_broker().flush_all()
    billing.stop_resource(funded.tenant_id, "evaluation", evaluation_id, reason=billing.VANISHED)

    later = recovery.Sweep(now=timezone.now() + timedelta(seconds=61))
    assert recover_evaluations(later) == 1

    old, new = Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=evaluation_id).order_by("started_at")
    assert (old.stop_reason, new.state) == ("vanished", "running")
    assert runner.run(evaluation_id) == "succeeded"
    new.refresh_from_db()
    assert (new.state, new.stop_reason) == ("stopped", "completed")


def test_an_automatic_run_whose_worker_died_is_run_again_and_succeeds(
        funded, classifier, digits_dataset, cpu_spec, settings):
    """The evaluation after training (part of the task's bill: no meter of its own) is retried
    by the same lease sweep."""
    import uuid

    from evaluation.aggregates import EvaluationAggregate
    from evaluation.commands import INCLUDED
    from evaluation.events import EvaluationCreated, EvaluationQueued

    settings.WORK_LEASE_TIMEOUT_S = 5.0
    evaluation_id = str(uuid.uuid4())
    EvaluationAggregate(funded.tenant_id, evaluation_id).append(  # as evaluate_after_training
        EvaluationCreated(project=str(classifier.project_id), model=str(classifier.id),
                          dataset=digits_dataset["id"], scenario="classification",
                          options={"iou": 0.5, "score_threshold": 0.5, "automatic": True,
                                   "device": "cpu"},
                          spec=str(cpu_spec.id), spec_name=cpu_spec.name, billing_mode=INCLUDED,
                          task=None),
        EvaluationQueued(meter_id=""))
    claimed_by_a_worker_that_died(evaluation_id)

    assert sweep_lost() == 1

    assert Evaluation.objects.unscoped().get(id=evaluation_id).state == "queued"
    assert runner.run(evaluation_id) == "succeeded"
    assert types_of(evaluation_id)[-4:] == ["EvaluationInterrupted", "EvaluationQueued",
                                            "EvaluationStarted", "EvaluationSucceeded"]
    assert not Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=evaluation_id).exists()  # billed with its task, never on its own


def test_a_worker_that_died_mid_run_is_superseded_and_its_late_ending_appends_nothing(
        api, funded, classifier, digits_dataset, cpu_spec, settings, monkeypatch):
    """The worker is alive after all (only its heartbeat stalled): the sweep gave its run up
    and queued it again, so the old run stops at its next batch and writes no ending."""
    from training_runtime.predict import Predictor

    settings.WORK_LEASE_TIMEOUT_S = 5.0
    monkeypatch.setattr(runner, "STOP_CHECK_S", 0.0)
    evaluation_id = create(api, funded, classifier, digits_dataset)
    dramatiq.get_broker().flush_all()
    predict = Predictor.predict

    def predict_while_given_up(self, *args, **kwargs):
        WorkLease.objects.filter(key=runner.lease_key(evaluation_id)).update(
            last_seen_at=timezone.now() - timedelta(seconds=60))
        sweep_lost()
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", predict_while_given_up)

    assert runner.run(evaluation_id) == "stopped"

    assert types_of(evaluation_id)[-2:] == ["EvaluationInterrupted", "EvaluationQueued"]
    assert Evaluation.objects.unscoped().get(id=evaluation_id).state == "queued"
