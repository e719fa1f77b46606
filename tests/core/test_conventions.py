"""The API's conventions (docs/): errors, auth, request ids, limits, throttling, paging, schema."""

import json

import pytest

from accounts.models import ApiToken, Project, Tenant, User
from core.throttling import TokenRateThrottle
from eventlog.models import Event


def rows() -> dict[str, int]:
    return {m.__name__: m._base_manager.count() for m in (User, Tenant, ApiToken, Project, Event)}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v2/projects/", "/api/",
                                  "/api/v1/projects/not-a-uuid/"])
def test_unknown_url_under_api_is_a_json_404(api, tenant_a, path):
    error = error_of(api.as_(tenant_a).get(path), 404)

    assert error == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_no_token_is_401_with_a_challenge(api, db):
    response = api.get("/api/v1/projects/")

    assert error_of(response, 401)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("authorization", ["Bearer aml_not-a-real-token", "Bearer ", "bearer x"])
def test_bad_token_is_401_with_a_challenge(api, db, authorization):
    response = api.get("/api/v1/projects/", HTTP_AUTHORIZATION=authorization)

    error = error_of(response, 401)
    assert error["code"] == "not_authenticated"
    assert error["fields"] == {}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_method_not_allowed_has_the_error_shape(api, tenant_a):
    response = api.as_(tenant_a).delete("/api/v1/projects/")

    error = error_of(response, 405)
    assert error["code"] == "method_not_allowed"
    assert error["fields"] == {}
    assert "DELETE" in error["message"]


# --- request ids -------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(api, tenant_a):
    ids = {api.as_(tenant_a).get("/api/v1/me/")["X-Request-ID"],
           api.get("/api/v1/nothing-here/")["X-Request-ID"],
           api.get("/api/v1/projects/")["X-Request-ID"]}

    assert len(ids) == 3
    assert all(ids)


def test_a_sane_incoming_request_id_is_echoed(api, tenant_a):
    response = api.as_(tenant_a).get("/api/v1/me/", HTTP_X_REQUEST_ID="trace-42.a:b_c")

    assert response["X-Request-ID"] == "trace-42.a:b_c"


@pytest.mark.parametrize("incoming", ["has spaces in it", "x" * 300, "semi;colon", "ünïcode"])
def test_an_unfit_incoming_request_id_is_replaced(api, tenant_a, incoming):
    response = api.as_(tenant_a).get("/api/v1/me/", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] not in {"", incoming}
    assert len(response["X-Request-ID"]) <= 128


def test_events_a_request_appends_carry_its_request_id_and_actor(api, tenant_a):
    response = api.as_(tenant_a).post("/api/v1/projects/", {"name": "Traced"}, format="json",
                                      HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 201

    [event] = Event.objects.filter(stream_id=response.json()["id"])

    assert event.metadata["request_id"] == "req-123"
    assert event.metadata["actor"] == f"user:{tenant_a.user_id}"


# --- limits ------------------------------------------------------------------------------------


def test_oversize_json_body_is_413_and_writes_nothing(api, tenant_a, settings):
    settings.MAX_REQUEST_BYTES = 1000
    before = rows()

    response = api.as_(tenant_a).post("/api/v1/projects/",
                                      {"name": "Big", "description": "x" * 2000}, format="json")

    assert error_of(response, 413)["code"] == "payload_too_large"
    assert response["X-Request-ID"]
    assert rows() == before
    small = api.as_(tenant_a).post("/api/v1/projects/", {"name": "Small"}, format="json")
    assert small.status_code == 201


def test_oversize_signup_is_413_too(api, db, settings):
    settings.MAX_REQUEST_BYTES = 1000
    before = rows()

    response = api.post("/api/v1/auth/signup/", {"email": "big@example.com", "password": "p" * 2000,
                                                 "tenant": "Big"}, format="json")

    assert error_of(response, 413)["code"] == "payload_too_large"
    assert rows() == before


def test_a_content_length_that_is_not_a_number_is_refused(api, tenant_a):
    response = api.as_(tenant_a).post("/api/v1/projects/", {"name": "Odd"}, format="json",
                                      CONTENT_LENGTH="lots")

    assert error_of(response, 400)["code"] == "malformed_request"
    assert not Project.objects.for_tenant(tenant_a.tenant_id).exists()


# --- throttling --------------------------------------------------------------------------------


def allow_tokens(monkeypatch, rate: str) -> None:
    """DRF copies the rate table onto the class when it is defined, so patch the class itself.

    The cache keys carry the token's id, and every test's tokens are new, so counters from other
    tests (or other runs sharing a Redis cache) cannot interfere; no cache flush is needed.
    """
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES",
                        {**TokenRateThrottle.THROTTLE_RATES, "token": rate})


def test_a_token_over_its_rate_is_throttled(api, tenant_a, monkeypatch):
    allow_tokens(monkeypatch, "3/min")
    as_a = api.as_(tenant_a)
    assert [as_a.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 200]

    response = as_a.get("/api/v1/me/")

    assert error_of(response, 429)["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 61


def test_each_token_has_its_own_budget(api, tenant_a, monkeypatch):
    second = api.post("/api/v1/auth/token/", {"email": tenant_a.email,
                      "password": tenant_a.password}, format="json").json()["token"]
    allow_tokens(monkeypatch, "3/min")
    first_client, second_client = api.as_(tenant_a), api.as_(second)
    for _ in range(3):
        assert first_client.get("/api/v1/me/").status_code == 200

    assert first_client.get("/api/v1/me/").status_code == 429
    assert [second_client.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 200]
    assert second_client.get("/api/v1/me/").status_code == 429


# --- pagination --------------------------------------------------------------------------------


def test_lists_page_with_limit_and_next(api, tenant_a):
    as_a = api.as_(tenant_a)
    names = ["First", "Second", "Third"]
    for name in names:
        assert as_a.post("/api/v1/projects/", {"name": name}, format="json").status_code == 201

    first = as_a.get("/api/v1/projects/?limit=2").json()
    assert set(first) == {"results", "next"}
    assert len(first["results"]) == 2
    assert first["next"]

    second = as_a.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert second["next"] is None
    seen = [p["name"] for p in first["results"] + second["results"]]
    assert sorted(seen) == sorted(names)
    assert seen == names[::-1]  # newest first


def test_short_list_has_no_next(api, tenant_a, project_of_a):
    body = api.as_(tenant_a).get("/api/v1/projects/").json()

    assert body == {"results": [body["results"][0]], "next": None}
    assert body["results"][0]["id"] == project_of_a["id"]


# --- the schema --------------------------------------------------------------------------------


def test_openapi_schema_lists_the_api(api, db):
    response = api.get("/api/v1/schema/?format=json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/projects/", "/api/v1/projects/{id}/", "/api/v1/events/",
            "/api/v1/health/"} <= set(schema["paths"])


def test_interactive_docs_are_served(api, db):
    response = api.get("/api/v1/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()


def test_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file",
                 str(tmp_path / "schema.yaml"))
    assert "bearerAuth" in (tmp_path / "schema.yaml").read_text()
