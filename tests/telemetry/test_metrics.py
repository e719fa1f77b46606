"""/metrics: what it counts after a few requests and a job, and who may read it."""

import re
import uuid

import dramatiq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import sign_up
from tests.workers import stub_worker


def scrape(api, **extra) -> dict[tuple[str, frozenset], float]:
    response = api.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_and_status(api, db):
    account = sign_up(api)
    owner = api.as_(account)
    before = scrape(api)
    missing = [uuid.uuid4() for _ in range(3)]
    for task_id in missing:
        assert owner.get(f"/api/v1/tasks/{task_id}/").status_code == 404
    assert owner.get("/api/v1/me/").status_code == 200
    assert api.get(f"/api/v1/no-such-route/{uuid.uuid4()}/").status_code == 404
    after = scrape(api)

    task_route = {"method": "GET", "route": "/api/v1/tasks/<uuid:pk>/"}
    assert value(after, "automl_http_requests_total", **task_route, status="404") - value(
        before, "automl_http_requests_total", **task_route, status="404") == 3
    me = {"method": "GET", "route": "/api/v1/me/", "status": "200"}
    assert value(after, "automl_http_requests_total", **me) - value(
        before, "automl_http_requests_total", **me) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "automl_http_requests_total", **unmatched) - value(
        before, "automl_http_requests_total", **unmatched) == 1
    # latency histogram by route: buckets, count and sum
    assert value(after, "automl_http_request_duration_seconds_count", **task_route) - value(
        before, "automl_http_request_duration_seconds_count", **task_route) == 3
    assert value(after, "automl_http_request_duration_seconds_bucket", **task_route,
                 le="+Inf") >= 3
    assert (("automl_http_request_duration_seconds_bucket",
             frozenset({**task_route, "le": "0.005"}.items())) in after)
    # no raw path, hence no id, in any label
    text = api.get("/metrics").content.decode()
    for task_id in missing:
        assert str(task_id) not in text


def appended(samples) -> float:
    return sum(count for (name, _), count in samples.items()
               if name == "automl_events_appended_total")


def test_event_appends_are_counted(api, tenant_a):
    before = scrape(api)
    response = api.as_(tenant_a).post("/api/v1/projects/", {"name": "Counted"}, format="json")
    assert response.status_code == 201, response.content
    after = scrape(api)
    assert appended(after) > appended(before)
    assert value(after, "automl_eventlog_head_position") > 0


def test_jobs_are_counted_by_queue_actor_and_outcome(api, transactional_db):
    from billing.actors import settle_running_meters

    def explode() -> None:
        raise RuntimeError("boom")

    failing = dramatiq.actor(explode, actor_name="telemetry_test_explode", queue_name="cpu",
                             max_retries=0)
    before = scrape(api)
    with stub_worker() as broker:
        settle_running_meters.send()
        failing.send()
        broker.join("cpu", fail_fast=False)
    after = scrape(api)

    ok = {"queue": "cpu", "actor": "settle_running_meters", "outcome": "success"}
    bad = {"queue": "cpu", "actor": "telemetry_test_explode", "outcome": "failure"}
    for labels in (ok, bad):
        assert value(after, "automl_jobs_total", **labels) - value(
            before, "automl_jobs_total", **labels) == 1
    assert value(after, "automl_billing_settlement_runs_total", outcome="success") - value(
        before, "automl_billing_settlement_runs_total", outcome="success") == 1
    assert value(after, "automl_job_duration_seconds_count", queue="cpu",
                 actor="settle_running_meters") >= 1


# --- who may read it ----------------------------------------------------------------------------


def test_refused_from_an_address_outside_the_allowed_ranges(api, db):
    response = api.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert b"automl_" not in response.content


def test_a_forged_forwarded_for_does_not_help(api, db):
    response = api.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403


def test_allowed_ranges_are_configurable(api, db, settings):
    settings.METRICS_ALLOWED_CIDRS = ["203.0.113.0/24"]
    assert api.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.parametrize(("sent", "status"), [("Bearer s3cret-scrape-token", 200),
                                              ("Bearer wrong", 403), ("", 403)])
def test_a_bearer_token_opens_it_from_anywhere(api, db, settings, sent, status):
    settings.METRICS_BEARER_TOKEN = "s3cret-scrape-token"
    extra = {"HTTP_AUTHORIZATION": sent} if sent else {}
    assert api.get("/metrics", REMOTE_ADDR="203.0.113.9", **extra).status_code == status


def test_metrics_work_with_any_host(api, db, settings):
    settings.ALLOWED_HOSTS = ["automl.example.com"]
    assert api.get("/metrics", HTTP_HOST="10.12.0.7:8000").status_code == 200
    assert re.search(r"^automl_http_requests_total", api.get("/metrics").content.decode(), re.M)
