"""How evaluation runs begin and end: stopped by the user or by billing (before or while
predicting), and the validation-task settings they take."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import api as billing
from billing import wallet
from billing.models import Meter
from evaluation import runner
from evaluation.actors import run_evaluation
from evaluation.models import Evaluation
from eventlog import policies
from eventlog.models import Event


def create(api, account, **body):
    return api.as_(account).post("/api/v1/evaluations/", body, format="json")


def events_of(evaluation_id):
    return list(Event.objects.filter(stream_id=evaluation_id).order_by("version")
                .values_list("type", flat=True))


def test_the_user_stops_a_queued_evaluation_and_its_meter_stops(api, funded, classifier,
                                                               digits_dataset, cpu_spec):
    created = create(api, funded, model=str(classifier.id), dataset=digits_dataset["id"]).json()

    stopped = api.as_(funded).post(f"/api/v1/evaluations/{created['id']}/stop/")

    assert stopped.status_code == 200, stopped.content
    assert (stopped.json()["state"], stopped.json()["stop_reason"]) == ("stopped", "user")
    meter = Meter.objects.for_tenant(funded.tenant_id).get(resource_id=created["id"])
    assert meter.state == "stopped" and meter.frozen == 0
    assert run_evaluation.fn(created["id"]) is None  # a late delivery does nothing
    assert events_of(created["id"])[-1] == "EvaluationStopped"
    again = api.as_(funded).post(f"/api/v1/evaluations/{created['id']}/stop/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "evaluation_not_running"


@pytest.mark.django_db(transaction=True)  # the follower reads committed events only
def test_running_out_of_funds_stops_a_queued_evaluation(api, tenant_a, classifier,
                                                       digits_dataset, cpu_spec, settings,
                                                       django_capture_on_commit_callbacks):
    settings.BILLING_LEASE_TIMEOUT_S = 10 * 3600
    spare = wallet.view(tenant_a.tenant_id).available - 7_300  # leave enough to start
    wallet.adjust(tenant_a.tenant_id, -spare, "leave enough to start", "staff:test")
    created = create(api, tenant_a, model=str(classifier.id), dataset=digits_dataset["id"],
                     spec=str(cpu_spec.id)).json()

    with django_capture_on_commit_callbacks(execute=True):
        outcome = billing.settle_running(at=timezone.now() + timedelta(hours=2),
                               tenant_ids=[tenant_a.tenant_id])
        policies.follow_all()  # what the scheduler does next: evaluations follow MeterStopped
    assert outcome.stopped_short == 1, outcome

    meter = Meter.objects.for_tenant(tenant_a.tenant_id).get(resource_id=created["id"])
    assert (meter.state, meter.stop_reason) == ("stopped", "insufficient_funds")
    row = Evaluation.objects.unscoped().get(id=created["id"])
    assert (row.state, row.stop_reason) == ("stopped", "insufficient_funds")
    assert runner.run(created["id"]) == "skipped"


def test_a_stop_while_predicting_ends_the_run_without_a_report(api, funded, classifier,
                                                              digits_dataset, cpu_spec,
                                                              monkeypatch):
    from evaluation import commands
    from training_runtime.predict import Predictor

    created = create(api, funded, model=str(classifier.id), dataset=digits_dataset["id"]).json()
    monkeypatch.setattr(runner, "STOP_CHECK_S", 0.0)
    predict = Predictor.predict

    def predict_then_stop(self, *args, **kwargs):
        commands.stop_evaluation(funded.tenant_id, created["id"], "user")
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", predict_then_stop)

    assert runner.run(created["id"]) == "stopped"

    assert events_of(created["id"]) == ["EvaluationCreated", "EvaluationQueued",
                                        "EvaluationStarted", "EvaluationStopped"]
    body = api.as_(funded).get(f"/api/v1/evaluations/{created['id']}/").json()
    assert (body["state"], body["metrics"]) == ("stopped", {})
    report = api.as_(funded).get(f"/api/v1/evaluations/{created['id']}/metrics/")
    assert report.status_code == 409


@pytest.mark.parametrize(("body", "field", "named"), [
    ({"score_threshold": 0.5, "score_thresholds": {"digit-1": 0.4}}, "score_thresholds",
     "digit-1"),
    ({"score_thresholds": {"digit-9": 0.9}}, "score_thresholds", "digit-9"),
    ({"score_thresholds": {"digit-1": 1.5}}, "score_thresholds", "digit-1"),
    ({"iou": 0.5, "low_overlap_iou": 0.6}, "low_overlap_iou", "0.5"),
    ({"low_overlap_iou": 0}, "low_overlap_iou", "above 0"),
    ({"device": "tpu"}, "device", ""),
    ({"batch_size": 0}, "batch_size", ""),
    ({"image_size": 8}, "image_size", ""),
    ({"device": "gpu"}, "device", "gpu"),  # no GPU spec is offered here
])
def test_bad_validation_settings_are_400_naming_the_field_and_write_nothing(
        api, funded, classifier, digits_dataset, cpu_spec, body, field, named):
    before = Event.objects.count()

    response = create(api, funded, model=str(classifier.id), dataset=digits_dataset["id"],
                      **body)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert named in error["message"] + " ".join(map(str, error["fields"][field]))
    assert Event.objects.count() == before
    assert not Evaluation.objects.unscoped().exists()
    assert not Meter.objects.for_tenant(funded.tenant_id).exists()


def test_validation_settings_are_kept_on_the_run_and_used(api, funded, classifier,
                                                         digits_dataset, cpu_spec):
    created = create(api, funded, model=str(classifier.id), dataset=digits_dataset["id"],
                     score_threshold=0.3, score_thresholds={"digit-1": 0.6},
                     low_overlap_iou=0.2, batch_size=4, image_size=48, device="cpu")
    assert created.status_code == 201, created.content
    options = created.json()["options"]
    assert options == {"iou": 0.5, "score_threshold": 0.3, "score_thresholds": {"digit-1": 0.6},
                       "low_overlap_iou": 0.2, "batch_size": 4, "image_size": 48,
                       "device": "cpu"}

    run_evaluation.fn(created.json()["id"])

    body = api.as_(funded).get(f"/api/v1/evaluations/{created.json()['id']}/").json()
    assert body["state"] == "succeeded", body
    assert body["summary"]["image_count"] == digits_dataset["image_count"]
