"""Prediction latency per service on /metrics, through the gateway (a Bearer key, as clients
call it) and counted with the HTTP requests under the route's template."""

import pytest
from prometheus_client import REGISTRY

from tests.serving.conftest import (  # noqa: F401  (fixtures)
    classifier,
    classifier_artifact,
    cpu_spec,
    funded,
    png,
    serving_worker,
    wait_state,
)
from tests.serving.test_gateway import call, json_body
from tests.serving.test_services import publish

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_prediction_latency_by_service_and_outcome(
        api, funded, classifier, cpu_spec, serving_worker):  # noqa: F811  (fixtures by name)
    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    path = f"/api/v1/services/{service['id']}/predict/"
    key = {"Authorization": f"Bearer {service['key']}", "Content-Type": "application/json"}
    route = {"method": "POST", "route": "/api/v1/services/<uuid:pk>/predict/"}
    ok_before = sample("automl_http_requests_total", **route, status="200")

    for _ in range(2):
        status, _, body = call(path, headers=key, body=json_body(png(3)))
        assert status == 200, body
    status, _, _ = call(path, headers=key, body=json_body(b"not an image"))
    assert status == 400

    of_service = {"service": service["id"]}
    assert sample("automl_prediction_duration_seconds_count", **of_service, outcome="ok") == 2
    assert sample("automl_prediction_duration_seconds_count", **of_service,
                  outcome="error") == 1
    assert sample("automl_prediction_duration_seconds_bucket", **of_service, outcome="ok",
                  le="+Inf") == 2
    assert sample("automl_http_requests_total", **route, status="200") - ok_before == 2
