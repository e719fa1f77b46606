"""Hostile query strings and bodies: a 400 naming what is wrong, never a 500 (issue 16, item 9)."""

import base64
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.core.test_bad_input import assert_error_shape
from tests.test_tenant_isolation import a_service, a_task


def forged(**tokens: object) -> str:
    """A cursor as DRF encodes one, with whatever tokens a forger chose."""
    return base64.b64encode(urlencode(tokens).encode()).decode()


FORGED_CURSORS = [
    "garbage",
    "!!!",
    "é",
    forged(p="garbage"),
    forged(p="2026-01-01 00:00:00+00:00\x00"),
    forged(p="0001-01-01 00:00:00+01:00"),  # before year 1 in UTC
    forged(p="9999-12-31 23:59:59+00:00", o="x"),
    forged(o=-1),
    forged(o=10**30),
    forged(r="maybe"),
    forged(r=10**30, p="2026-01-01"),
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_a_forged_cursor_is_a_400_on_cursor(api, tenant_a, project_of_a, cursor):
    response = api.as_(tenant_a).get("/api/v1/projects/", {"cursor": cursor})

    error = assert_error_shape(response, 400, "invalid")
    assert list(error["fields"]) == ["cursor"], error


@pytest.mark.parametrize("cursor", [forged(p="garbage"), forged(p=str(10**30)),
                                    forged(p=str(-(2**63) - 1)), forged(p="1.5")])
def test_a_forged_position_on_an_integer_ordering_is_a_400(api, tenant_a, cursor):
    response = api.as_(tenant_a).get(f"/api/v1/billing/ledger/?cursor={cursor}")

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["cursor"]


def test_the_cursors_the_api_hands_out_still_page(api, tenant_a):
    as_a = api.as_(tenant_a)
    names = [f"Project {n}" for n in range(5)]
    for name in names:
        assert as_a.post("/api/v1/projects/", {"name": name}, format="json").status_code == 201

    seen, url = [], "/api/v1/projects/?limit=2"
    while url:
        page = as_a.get(url)
        assert page.status_code == 200, page.content
        seen += [p["name"] for p in page.json()["results"]]
        url = page.json()["next"]

    assert seen == names[::-1]


@pytest.mark.parametrize("limit", ["0", "-1", "many", "1e3"])
def test_a_page_size_that_is_not_a_positive_integer_is_a_400(api, tenant_a, limit):
    response = api.as_(tenant_a).get("/api/v1/projects/", {"limit": limit})

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["limit"]


def test_a_project_filter_that_is_not_an_id_is_a_400(api, tenant_a):
    response = api.as_(tenant_a).get("/api/v1/models/?project=garbage")

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == ["project"]


@pytest.mark.parametrize(("route", "field", "value"), [
    ("/api/v1/billing/usage/", "to", "9999-12-31"),
    ("/api/v1/billing/usage/", "from", "10000-01-01"),
    ("/api/v1/billing/usage/", "to", "+10000-01-01T00:00:00Z"),
    ("/api/v1/billing/usage/", "from", "9999-12-31T23:59:59-01:00"),
    ("/api/v1/billing/usage/", "from", "0001-01-01T00:00:00+01:00"),
    ("/api/v1/billing/usage/", "to", "2026-02-30"),
    ("/api/v1/billing/ledger/", "to", "9999-12-31"),
    ("/api/v1/billing/ledger/", "from", "99999-01-01"),
    ("/api/v1/billing/statements/", "month", "9999-12"),
    ("/api/v1/billing/statements/", "month", "10000-01"),
])
def test_a_date_out_of_range_in_a_report_filter_is_a_400(api, tenant_a, route, field, value):
    response = api.as_(tenant_a).get(route, {field: value})

    assert field in assert_error_shape(response, 400, "invalid")["fields"]


@pytest.mark.parametrize(("field", "value"), [("until", "9999-12-31"),
                                              ("since", "9999-12-31T23:00:00-05:00"),
                                              ("since", "12345-01-01")])
def test_a_date_out_of_range_in_a_log_filter_is_a_400(api, tenant_a, field, value):
    task = a_task(api, tenant_a)
    response = api.as_(tenant_a).get(f"/api/v1/tasks/{task.id}/logs/", {field: value})

    assert field in assert_error_shape(response, 400, "invalid")["fields"]


@pytest.mark.parametrize(("route", "field", "value"), [
    ("/api/v1/tasks/", "state", "nonsense"),
    ("/api/v1/tasks/", "project", "garbage"),
    ("/api/v1/services/", "state", "\x00"),
    ("/api/v1/evaluations/", "state", "nonsense"),
    ("/api/v1/billing/meters/", "resource_id", "garbage"),
    ("/api/v1/billing/meters/", "state", "nonsense"),
    ("/api/v1/billing/ledger/", "account", "a\x00b"),
    ("/api/v1/projects/", "archived", "perhaps"),
    ("/api/v1/datasets/", "builtin", "perhaps"),
])
def test_a_filter_value_of_the_wrong_kind_is_a_400_on_that_filter(api, tenant_a, route, field,
                                                                   value):
    response = api.as_(tenant_a).get(route, {field: value})

    assert list(assert_error_shape(response, 400, "invalid")["fields"]) == [field]


# --- bodies nested beyond reason ------------------------------------------------------------------

DEEP = 100_000


def deep_json(levels: int = DEEP) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("body", [deep_json(), b'{"name": ' + deep_json() + b"}",
                                  b'{"a":' * DEEP + b"1" + b"}" * DEEP, deep_json(1000)])
def test_json_nested_beyond_reason_is_a_malformed_request(api, tenant_a, body):
    response = api.as_(tenant_a).generic("POST", "/api/v1/projects/", body)

    assert assert_error_shape(response, 400, "malformed_request")["fields"] == {}


def test_json_nested_a_little_is_still_read(api, tenant_a):
    response = api.as_(tenant_a).generic("POST", "/api/v1/projects/",
                                         b'{"name": "Fine", "extra": [[[[{"a": [1]}]]]]}')

    # read, not malformed: the field it does not take is named
    assert assert_error_shape(response, 400, "invalid")["fields"] == {
        "extra": ["This operation takes no such field."]}


def test_a_deep_json_prediction_body_is_a_malformed_request(api, tenant_a, monkeypatch):
    from serving.views import ServicePredictView, Target

    service = a_service(api, tenant_a)
    # a running service with a live instance, whatever its heartbeat says: the body is the point
    monkeypatch.setattr(ServicePredictView, "_service", lambda self, request, pk: Target(
        uuid.UUID(service.id), uuid.UUID(tenant_a.tenant_id), "running", 1))

    response = api.as_(tenant_a).generic("POST", f"/api/v1/services/{service.id}/predict/",
                                         deep_json())

    assert assert_error_shape(response, 400, "malformed_request")["fields"] == {}


# --- a crash under /api/ keeps the API's shape, even with DEBUG ----------------------------------


@pytest.fixture
def crashing_projects(monkeypatch):
    """The project list raises what no handler expects."""
    from accounts.views import ProjectViews

    def crash(self):
        raise RuntimeError("a bad day")

    monkeypatch.setattr(ProjectViews, "get_queryset", crash)


@pytest.mark.parametrize("debug", [True, False])
def test_a_crash_under_the_api_answers_the_error_shape(tenant_a, crashing_projects, settings,
                                                       debug):
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Bearer {tenant_a.token}",
                          HTTP_ACCEPT="text/html,*/*")

    error = assert_error_shape(response, 500, "server_error")
    assert error["fields"] == {}
    assert "a bad day" not in response.content.decode()


def test_a_crash_is_still_raised_in_tests_and_logged(api, tenant_a, crashing_projects, caplog):
    with pytest.raises(RuntimeError, match="a bad day"):
        api.as_(tenant_a).get("/api/v1/projects/")

    assert any(record.exc_info and record.levelname == "ERROR" for record in caplog.records)


def test_unknown_ids_in_paths_stay_404(api, tenant_a):
    response = api.as_(tenant_a).get(f"/api/v1/models/{uuid.uuid4()}/")

    assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize("debug", [True, False])
def test_a_crash_in_the_prediction_gateway_answers_the_error_shape(settings, monkeypatch, debug):
    from serving import gateway
    from tests.serving.test_gateway import call

    settings.DEBUG = debug

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bad day")

    monkeypatch.setattr(gateway, "answer", crash)

    status, headers, body = call(f"/api/v1/services/{uuid.uuid4()}/predict/",
                                 headers={"Authorization": "Bearer anything",
                                          "Accept": "text/html,*/*"})

    assert (status, headers["content-type"]) == (500, "application/json")
    assert body["error"]["code"] == "server_error" and body["error"]["fields"] == {}


def test_a_crash_inside_the_prediction_view_is_answered_once(tenant_a, settings, monkeypatch,
                                                              caplog):
    from serving.views import ServicePredictView

    settings.DEBUG = True

    def crash(self, request, pk):
        raise RuntimeError("a bad day")

    monkeypatch.setattr(ServicePredictView, "_service", crash)
    client = Client(raise_request_exception=False)

    response = client.post(f"/api/v1/services/{uuid.uuid4()}/predict/", {},
                           HTTP_AUTHORIZATION=f"Bearer {tenant_a.token}")

    assert_error_shape(response, 500, "server_error")
    assert len([r for r in caplog.records if r.exc_info]) == 1


def test_more_fields_than_django_reads_is_a_400_not_a_crash(tenant_a):
    client = Client(raise_request_exception=False)
    token = f"Bearer {tenant_a.token}"
    fields = urlencode({f"k{n}": "v" for n in range(1200)})  # over DATA_UPLOAD_MAX_NUMBER_FIELDS

    query = client.get(f"/api/v1/projects/?{fields}", HTTP_AUTHORIZATION=token)
    form = client.generic("POST", "/api/v1/projects/", fields, HTTP_AUTHORIZATION=token,
                          content_type="application/x-www-form-urlencoded")

    assert_error_shape(query, 400, "malformed_request")
    assert_error_shape(form, 400, "malformed_request")
