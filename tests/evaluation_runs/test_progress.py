"""An evaluation reports how far it got: `EvaluationProgressed` events (images done of images in
all, time left), throttled like a task's progress, projected onto the evaluation's answer and
read on the feed by the same roles as its other events."""

import pytest

from accounts.feed_rules import may_read
from accounts.roles import ROLES
from evaluation.actors import run_evaluation
from eventlog.models import Event
from tests.feed import read_feed

pytestmark = pytest.mark.django_db(transaction=True)


def run(api, account, model, dataset, **options) -> str:
    created = api.as_(account).post("/api/v1/evaluations/", {
        "model": str(model.id), "dataset": dataset["id"], **options}, format="json")
    assert created.status_code == 201, created.content
    run_evaluation.fn(created.json()["id"])
    return created.json()["id"]


def progress_of(evaluation_id: str) -> list[dict]:
    return [e.data for e in Event.objects.filter(stream_id=evaluation_id,
                                                 type="EvaluationProgressed").order_by("version")]


def test_a_run_reports_its_progress_batch_by_batch_up_to_every_image(
        api, funded, classifier, digits_dataset, cpu_spec, settings):
    settings.TASK_PROGRESS_INTERVAL_S = 0.0
    evaluation_id = run(api, funded, classifier, digits_dataset, batch_size=4)

    reports = progress_of(evaluation_id)
    total = reports[0]["images_total"]
    assert total > 8 and len(reports) == -(-total // 4)  # one per batch of 4
    done = [r["images_done"] for r in reports]
    assert done == sorted(set(done)) and done[-1] == total  # increasing, to the last image
    assert all(r["images_total"] == total for r in reports)
    assert [r["progress"] for r in reports] == [round(d / total, 4) for d in done]
    assert reports[-1]["eta_s"] == 0.0 and all(r["eta_s"] >= 0 for r in reports)

    body = api.as_(funded).get(f"/api/v1/evaluations/{evaluation_id}/").json()
    assert body["state"] == "succeeded"
    assert (body["progress"], body["images_done"], body["images_total"], body["eta_s"]) == (
        1.0, total, total, 0.0)
    # the live feed carries them, in order, to whoever reads the evaluation's other events
    feed = read_feed(api.as_(funded), until=lambda events: any(
        e["type"] == "EvaluationSucceeded" for e in events))
    streamed = [e["data"]["images_done"] for e in feed if e["type"] == "EvaluationProgressed"
                and e["stream_id"] == evaluation_id]
    assert streamed == done


def test_progress_is_throttled_to_one_report_per_interval_and_the_last(
        api, funded, classifier, digits_dataset, cpu_spec, settings):
    settings.TASK_PROGRESS_INTERVAL_S = 3600.0
    evaluation_id = run(api, funded, classifier, digits_dataset, batch_size=4)

    reports = progress_of(evaluation_id)
    assert [r["images_done"] for r in reports] == [4, reports[0]["images_total"]]


def test_every_role_that_reads_evaluation_events_reads_their_progress():
    for role in ROLES:
        assert may_read(role, "evaluation", "EvaluationProgressed") == may_read(
            role, "evaluation", "EvaluationStarted"), role


def test_the_schema_documents_the_progress_fields(api, tenant_a):
    schema = api.as_(tenant_a).get("/api/v1/schema/?format=json").json()
    fields = schema["components"]["schemas"]["EvaluationOut"]["properties"]
    for name in ("progress", "images_done", "images_total", "eta_s"):
        assert fields[name].get("description"), name
