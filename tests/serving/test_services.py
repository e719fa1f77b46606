"""Prediction services through the API: publish, predict (tenant token and service key) as the
Predictor would, monitoring counts, stops (user, maximum running time, funds), updates without
a failed request, overload, and tenants kept apart."""

import base64
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import api as billing
from billing import wallet
from billing.models import Meter
from eventlog.models import Event
from serving import monitoring, watchdog
from serving.models import Service
from tests.serving.conftest import png, service_state, wait_for, wait_state

pytestmark = pytest.mark.django_db(transaction=True)


def publish(api, account, model, spec, **extra):
    response = api.as_(account).post("/api/v1/services/", {
        "model": str(model.id), "name": "digits", "spec": str(spec.id), **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def predict(client, service_id, image: bytes, **params):
    return client.post(f"/api/v1/services/{service_id}/predict/",
                       {"image": base64.b64encode(image).decode(), **params}, format="json")


def direct(artifact, image: bytes, top_k=3):
    from training_runtime.predict import Predictor

    (found,) = Predictor.load(artifact, "cpu").predict([image], top_k=top_k, min_score=0.0)
    return found


def test_a_published_model_predicts_like_the_predictor_and_is_monitored(
        api, funded, tenant_b, classifier, classifier_artifact, cpu_spec, serving_worker):
    service = publish(api, funded, classifier, cpu_spec)
    assert service["state"] == "deploying" and service["key"].startswith("svk_")
    assert wallet.view(funded.tenant_id).frozen == 2 * 3600
    wait_state(api, funded, service["id"], "running")

    as_token = api.as_(funded)
    multipart = as_token.post(f"/api/v1/services/{service['id']}/predict/",
                              {"image": _upload(png(1)), "top_k": 3}, format="multipart")
    assert multipart.status_code == 200, multipart.content
    want = direct(classifier_artifact, png(1))
    got = multipart.json()["predictions"]
    assert [p["label"] for p in got] == [p["label"] for p in want]
    assert [p["score"] for p in got] == pytest.approx([p["score"] for p in want], abs=1e-6)

    with_key = api.as_(None)
    with_key.credentials(HTTP_AUTHORIZATION=f"Bearer {service['key']}")
    keyed = predict(with_key, service["id"], png(2), top_k=3)
    assert keyed.status_code == 200, keyed.content
    assert [p["label"] for p in keyed.json()["predictions"]] == [
        p["label"] for p in direct(classifier_artifact, png(2))]

    floor = sorted(p["score"] for p in want)[1]
    filtered = predict(as_token, service["id"], png(1), top_k=3, min_score=floor)
    assert [p["score"] for p in filtered.json()["predictions"]] == pytest.approx(
        [p["score"] for p in want if p["score"] >= floor], abs=1e-6)

    broken = predict(as_token, service["id"], b"not an image at all")
    assert broken.status_code == 400 and "image" in broken.json()["error"]["fields"]
    assert predict(api.as_(tenant_b), service["id"], png(1)).status_code == 404

    monitoring.flush()
    report = as_token.get(f"/api/v1/services/{service['id']}/monitoring/").json()
    assert report["totals"] == {"requests": 4, "errors": 1, "throttled": 0}
    assert report["minutes"][-1]["latency_ms"]["p50"] > 0
    row = Service.objects.unscoped().get(id=service["id"])
    later = timezone.now() + timedelta(hours=3)  # every minute closed and flushed by then
    assert watchdog.report_traffic(row, later) >= 1
    assert watchdog.report_traffic(row, later) == 0, "each minute once"
    live = [e["data"] for e in as_token.get(f"/api/v1/services/{service['id']}/events/").json()[
        "results"] if e["type"] == "ServiceTrafficRecorded"]
    assert sum(m["requests"] for m in live) == 4 and sum(m["errors"] for m in live) == 1

    stopped = as_token.post(f"/api/v1/services/{service['id']}/stop/")
    assert stopped.status_code == 202
    body = wait_state(api, funded, service["id"], "stopped")
    assert body["stop_reason"] == "user"
    assert body["instance_states"][0]["state"] == "exited"
    meter = Meter.objects.for_tenant(funded.tenant_id).get(resource_id=service["id"])
    assert meter.state == "stopped" and meter.frozen == 0
    late = predict(as_token, service["id"], png(1))
    assert (late.status_code, late.json()["error"]["code"]) == (409, "service_not_running")
    for refused in (as_token.post(f"/api/v1/services/{service['id']}/stop/"),
                    as_token.post(f"/api/v1/services/{service['id']}/key/")):
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "service_ended")
    switched = as_token.post(f"/api/v1/services/{service['id']}/model/",
                             {"model": str(classifier.id)}, format="json")
    assert (switched.status_code, switched.json()["error"]["code"]) == (
        409, "service_not_running")
    logs = as_token.get(f"/api/v1/services/{service['id']}/logs/?q=serves").json()
    assert logs["results"], "the instance's log reaches the service's logs"
    types = [e["type"] for e in as_token.get(
        f"/api/v1/services/{service['id']}/events/").json()["results"]]
    assert types[:3] == ["ServiceCreated", "ServiceMeterStarted", "ServiceKeyIssued"]
    assert types[-1] == "ServiceStopped"


def _upload(content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("x.png", content, content_type="image/png")


def test_a_short_wallet_is_402_and_publishes_nothing(api, tenant_a, project_of_a,
                                                    classifier_artifact, cpu_spec):
    from tests.serving.conftest import DIGIT_LABELS, stored_model

    model = stored_model(tenant_a.tenant_id, project_of_a["id"], classifier_artifact,
                         "classification", "small_cnn", DIGIT_LABELS)
    wallet.adjust(tenant_a.tenant_id, 7_199, "almost", "staff:test")
    response = api.as_(tenant_a).post("/api/v1/services/", {
        "model": str(model.id), "name": "x", "spec": str(cpu_spec.id)}, format="json")
    assert response.status_code == 402
    assert not Service.objects.unscoped().exists()
    assert not Event.objects.filter(stream_type="service").exists()


def test_a_key_reaches_its_own_service_only_and_a_new_key_replaces_it(
        api, funded, classifier, cpu_spec, serving_worker):
    first = publish(api, funded, classifier, cpu_spec)
    second = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, first["id"], "running")
    wait_state(api, funded, second["id"], "running")
    client = api.as_(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first['key']}")
    assert predict(client, first["id"], png(3)).status_code == 200
    assert predict(client, second["id"], png(3)).status_code == 404
    assert client.get(f"/api/v1/services/{first['id']}/").status_code == 401

    renewed = api.as_(funded).post(f"/api/v1/services/{first['id']}/key/").json()
    assert predict(client, first["id"], png(3)).status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {renewed['key']}")
    assert predict(client, first["id"], png(3)).status_code == 200


def test_the_maximum_running_time_stops_the_service(api, funded, classifier, cpu_spec,
                                                    serving_worker):
    service = publish(api, funded, classifier, cpu_spec, max_runtime_s=60)
    wait_state(api, funded, service["id"], "running")

    outcome = watchdog.check(at=timezone.now() + timedelta(seconds=61))

    assert outcome["stopped"] == 1
    body = wait_state(api, funded, service["id"], "stopped")
    assert body["stop_reason"] == "max_runtime"


def test_running_out_of_funds_stops_the_service(api, tenant_a, project_of_a,
                                                classifier_artifact, cpu_spec, serving_worker,
                                                settings):
    from tests.serving.conftest import DIGIT_LABELS, stored_model

    settings.BILLING_LEASE_TIMEOUT_S = 10 * 3600
    model = stored_model(tenant_a.tenant_id, project_of_a["id"], classifier_artifact,
                         "classification", "small_cnn", DIGIT_LABELS)
    wallet.adjust(tenant_a.tenant_id, 7_300, "enough to start", "staff:test")
    service = publish(api, tenant_a, model, cpu_spec)
    wait_state(api, tenant_a, service["id"], "running")

    billing.settle_running(at=timezone.now() + timedelta(hours=2),
                           tenant_ids=[tenant_a.tenant_id])

    body = wait_state(api, tenant_a, service["id"], "stopped")
    assert body["stop_reason"] == "insufficient_funds"


def test_an_update_switches_model_without_a_failed_request(
        api, funded, project_of_a, classifier, classifier_artifact, cpu_spec, serving_worker):
    from tests.serving.conftest import DIGIT_LABELS, stored_model

    newer = stored_model(funded.tenant_id, project_of_a["id"], classifier_artifact,
                         "classification", "small_cnn", DIGIT_LABELS)
    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    client = api.as_(funded)
    answers, done = [], threading.Event()

    def keep_predicting():
        from django.db import close_old_connections

        while not done.is_set():
            response = predict(client, service["id"], png(len(answers) % 5))
            answers.append((response.status_code, response.json().get("model")))
        close_old_connections()

    sender = threading.Thread(target=keep_predicting)
    sender.start()
    try:
        wait_for(lambda: len(answers) >= 3, what="requests before the update")
        updated = client.post(f"/api/v1/services/{service['id']}/model/",
                              {"model": str(newer.id)}, format="json")
        assert updated.status_code == 202, updated.content
        wait_state(api, funded, service["id"], "running")
        seen = len(answers)
        wait_for(lambda: len(answers) >= seen + 3, what="requests after the update")
    finally:
        done.set()
        sender.join()

    assert {code for code, _ in answers} == {200}
    models = [model for _, model in answers]
    assert models[0] == str(classifier.id) and models[-1] == str(newer.id)
    record = service_state(api, funded, service["id"])["updates"]
    assert [(u["from_model"], u["to_model"], u["state"]) for u in record] == [
        (str(classifier.id), str(newer.id), "done")]


def test_an_overloaded_service_answers_429_with_retry_after(
        api, funded, classifier, cpu_spec, serving_worker, settings, monkeypatch):
    from serving import instance

    settings.SERVING_MAX_QUEUE = 1
    release, entered = threading.Event(), threading.Event()
    answer = instance.answer

    def slow_answer(predictor, batch):
        entered.set()
        release.wait(timeout=30)
        return answer(predictor, batch)

    monkeypatch.setattr(instance, "answer", slow_answer)
    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    client = api.as_(funded)
    results: list[int] = []

    def one():
        results.append(predict(client, service["id"], png(4)).status_code)

    from serving.transport import transport

    busy = [threading.Thread(target=one) for _ in range(2)]
    busy[0].start()  # one in the instance's hands ...
    wait_for(entered.is_set, what="the instance to take the first request")
    busy[1].start()  # ... one waiting in the queue
    wait_for(lambda: transport().depth(service["id"]) >= 1, what="a waiting request")
    refused = predict(client, service["id"], png(4))
    release.set()
    for thread in busy:
        thread.join()

    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "throttled"
    assert sorted(results) == [200, 200]
    monitoring.flush()
    totals = client.get(f"/api/v1/services/{service['id']}/monitoring/").json()["totals"]
    assert totals == {"requests": 3, "errors": 0, "throttled": 1}
