"""The prediction gateway: Bearer-authenticated predictions reach the asynchronous route through
`config.asgi` without Django's browser middleware, and answer exactly as the URLconf's route
does (the error shape, the request id, the body limit, tenants apart, monitoring)."""

import base64
import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from serving import gateway, monitoring
from tests.serving.conftest import png, wait_state
from tests.serving.test_services import direct, publish

pytestmark = pytest.mark.django_db(transaction=True)


def scope(path: str, method: str = "POST", headers: dict[str, str] | None = None,
          body: bytes = b"") -> dict:
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    raw.append((b"content-length", str(len(body)).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": raw,
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}


def call(path: str, method: str = "POST", headers: dict[str, str] | None = None,
         body: bytes = b""):
    """One request through the ASGI application as uvicorn would make it: (status, headers,
    JSON body)."""
    from config.asgi import application

    async def run():
        app = ApplicationCommunicator(application, scope(path, method, headers, body))
        await app.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await app.receive_output(timeout=30)
        content = b""
        while True:
            message = await app.receive_output(timeout=30)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        await app.wait(timeout=5)
        return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, \
            json.loads(content)

    return async_to_sync(run)()


def json_body(image: bytes, **params) -> bytes:
    return json.dumps({"image": base64.b64encode(image).decode(), **params}).encode()


def test_the_routing_rule_sends_only_bearer_predictions_to_the_gateway():
    path = "/api/v1/services/8d3c5a52-7f5e-4a53-9a55-3d0f5a1d2b6c/predict/"
    bearer = {"Authorization": "Bearer svk_x"}
    assert gateway.handles(scope(path, headers=bearer))
    assert gateway.handles(scope(path, headers={"Authorization": "bearer tok"}))
    assert not gateway.handles(scope(path)), "a browser's session takes Django's chain (CSRF)"
    assert not gateway.handles(scope(path, "GET", bearer))
    assert not gateway.handles(scope(path.replace("predict/", "stop/"), headers=bearer))
    assert not gateway.handles({"type": "websocket", "path": path})


def test_the_route_lookup_follows_the_urlconf_in_force(settings):
    path = "/api/v1/services/8d3c5a52-7f5e-4a53-9a55-3d0f5a1d2b6c/predict/"
    assert gateway.predicted_service(path) == "8d3c5a52-7f5e-4a53-9a55-3d0f5a1d2b6c"
    settings.ROOT_URLCONF = "console.urls"  # a URLconf without the route: not a cached answer
    assert gateway.predicted_service(path) is None


def test_a_prediction_through_the_gateway_answers_like_the_route(
        api, funded, tenant_b, classifier, classifier_artifact, cpu_spec, serving_worker,
        settings):
    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    path = f"/api/v1/services/{service['id']}/predict/"
    key = {"Authorization": f"Bearer {service['key']}", "Content-Type": "application/json"}

    status, headers, body = call(path, headers={**key, "X-Request-ID": "gateway-1"},
                                 body=json_body(png(3), top_k=3))
    assert status == 200, body
    assert [p["label"] for p in body["predictions"]] == [
        p["label"] for p in direct(classifier_artifact, png(3))]
    assert headers["x-request-id"] == "gateway-1"
    assert headers["x-content-type-options"] == "nosniff"

    status, _, body = call(path, headers=key, body=b"not json")
    assert status == 400 and body["error"]["code"] == "malformed_request"
    status, _, body = call(path, headers=key, body=json_body(b"not an image"))
    assert status == 400 and "image" in body["error"]["fields"]
    status, _, body = call(path, headers=key, body=json_body(png(3), min_score=2))
    assert status == 400 and "min_score" in body["error"]["fields"]

    other = {"Authorization": f"Bearer {tenant_b.token}", "Content-Type": "application/json"}
    status, _, body = call(path, headers=other, body=json_body(png(3)))
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, headers, body = call(path, headers={**key, "Authorization": "Bearer svk_unknown"},
                                 body=json_body(png(3)))
    assert (status, body["error"]["code"]) == (401, "not_authenticated")
    assert "www-authenticate" in headers

    settings.MAX_REQUEST_BYTES = 1000
    status, _, body = call(path, headers=key, body=json_body(png(3, (64, 64))))
    assert (status, body["error"]["code"]) == (413, "payload_too_large")

    monitoring.flush()
    totals = api.as_(funded).get(f"/api/v1/services/{service['id']}/monitoring/").json()["totals"]
    # the 404 and 401 never reached a service the caller may see; the 413 never reached the view
    assert totals == {"requests": 4, "errors": 3, "throttled": 0}


def test_other_methods_on_the_route_are_405_in_the_error_shape(api, funded):
    response = api.as_(funded).get("/api/v1/services/8d3c5a52-7f5e-4a53-9a55-3d0f5a1d2b6c/"
                                   "predict/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_console_session_predicts_through_djangos_chain_with_its_csrf_token(
        api, funded, classifier, cpu_spec, serving_worker):
    import re

    from tests.console.test_views import signed_in

    service = publish(api, funded, classifier, cpu_spec)
    wait_state(api, funded, service["id"], "running")
    path = f"/api/v1/services/{service['id']}/predict/"
    browser = signed_in(funded, enforce_csrf_checks=True)
    body = json_body(png(5), top_k=2).decode()

    refused = browser.post(path, body, content_type="application/json")
    assert refused.status_code == 403, "a session write without the CSRF token"
    page = browser.get("/console/projects/").content.decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)[1]
    answered = browser.post(path, body, content_type="application/json",
                            HTTP_X_CSRFTOKEN=token)
    assert answered.status_code == 200, answered.content
    assert len(answered.json()["predictions"]) == 2
