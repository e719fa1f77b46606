"""The OpenAPI schema tells the whole truth: JSON by default, every operation's errors from the
registry (core.openapi), typed bodies; request bodies refuse fields they do not take."""

import json

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator

from core import errors
from tests.core.test_bad_input import assert_error_shape

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema():
    SCHEMA.update(SchemaGenerator().get_schema(request=None, public=True))
    return SCHEMA


def operations(schema):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


SCHEMA = {}


def body(response):
    """An error answer's body schema, its $ref resolved."""
    shape = response["content"]["application/json"]["schema"]
    if "$ref" in shape:
        shape = SCHEMA["components"]["schemas"][shape["$ref"].rsplit("/", 1)[-1]]
    return shape


def codes(operation, status):
    response = operation["responses"].get(str(status))
    if response is None:
        return set()
    return set(body(response)["properties"]["error"]["properties"]["code"]["enum"])


def test_the_schema_is_json_unless_yaml_is_asked_for(api, db):
    plain = api.get("/api/v1/schema/")
    assert plain.status_code == 200 and plain["Content-Type"].startswith("application/json")
    assert json.loads(plain.content)["openapi"].startswith("3.")

    for asked in ({"path": "/api/v1/schema/?format=yaml"},
                  {"path": "/api/v1/schema/", "HTTP_ACCEPT": "application/yaml"}):
        answer = api.get(**asked)
        assert answer.status_code == 200 and "json" not in answer["Content-Type"]
        assert yaml.safe_load(answer.content)["openapi"].startswith("3.")


def test_every_operation_documents_the_errors_of_its_kind(schema):
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        assert {"invalid", "malformed_request"} <= codes(operation, 400), where
        assert "unavailable" in codes(operation, 503), where
        assert "Retry-After" in operation["responses"]["503"]["headers"], where
        if "{" in path:
            assert codes(operation, 404) == {"not_found"}, where
        if operation.get("security") not in (None, [{}]):  # it takes a credential
            assert codes(operation, 401) >= {"not_authenticated"}, where
        if "requestBody" in operation:
            assert codes(operation, 413) == {"payload_too_large"}, where


def test_every_error_answer_has_the_one_shape(schema):
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                shape = body(response)
                assert shape["properties"]["error"]["required"] == ["code", "message", "fields"], (
                    method, path, status)
                for code in codes(operation, status):
                    assert next(e for e in errors.registry() if e.code == code).status == int(
                        status), (method, path, code)


def test_throttled_routes_say_when_to_come_back(schema):
    listing = schema["paths"]["/api/v1/tasks/"]["get"]
    assert codes(listing, 429) == {"throttled"}
    assert "Retry-After" in listing["responses"]["429"]["headers"]
    webhook = schema["paths"]["/api/v1/billing/stripe/webhook/"]["post"]
    assert "429" not in webhook["responses"]  # Stripe's deliveries are not throttled


@pytest.mark.parametrize("path, method", [
    ("/api/v1/tasks/", "post"), ("/api/v1/tasks/{id}/restart/", "post"),
    ("/api/v1/tasks/{id}/versions/", "post"), ("/api/v1/evaluations/", "post"),
    ("/api/v1/services/", "post"), ("/api/v1/billing/prepaid/", "post"),
])
def test_what_costs_money_documents_402(schema, path, method):
    assert codes(schema["paths"][path][method], 402) == {"insufficient_funds"}


def test_payments_document_that_they_may_be_unconfigured(schema):
    for path in ("/api/v1/billing/topups/", "/api/v1/billing/stripe/webhook/"):
        assert "payments_not_configured" in codes(schema["paths"][path]["post"], 503), path
    assert codes(schema["paths"]["/api/v1/billing/topups/"]["post"], 502) == {
        "payment_provider_unavailable"}
    assert codes(schema["paths"]["/api/v1/auth/token/"]["post"], 401) == {"invalid_credentials"}


def test_prepaid_hours_are_documented_as_the_page_they_are(schema, api, tenant_a):
    answer = api.as_(tenant_a).get("/api/v1/billing/prepaid/")
    assert set(answer.json()) == {"results", "next"}
    documented = schema["paths"]["/api/v1/billing/prepaid/"]["get"]["responses"]["200"]
    ref = documented["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][ref]["properties"]["results"]["type"] == "array"
    assert set(schema["components"]["schemas"][ref]["properties"]) == {"results", "next"}


def test_prediction_documents_both_bodies_and_its_answer(schema):
    predict = schema["paths"]["/api/v1/services/{id}/predict/"]["post"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data",
                                                      "application/json"}
    ref = predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(answer["properties"]) == {"predictions", "model"}


def test_a_field_the_operation_does_not_take_is_a_400_naming_it(api, tenant_a):
    from accounts.models import Project

    answer = api.as_(tenant_a).post("/api/v1/projects/", {"name": "P", "nmae": "typo"},
                                    format="json")
    error = assert_error_shape(answer, 400, "invalid")
    assert error["fields"] == {"nmae": ["This operation takes no such field."]}
    assert not Project.objects.for_tenant(tenant_a.tenant_id).exists()


def test_a_topup_refuses_a_field_it_does_not_take(api, tenant_a):
    answer = api.as_(tenant_a).post("/api/v1/billing/topups/", {"amount": 1000, "amout": 1},
                                    format="json")
    assert assert_error_shape(answer, 400, "invalid")["fields"] == {
        "amout": ["This operation takes no such field."]}


def test_an_unknown_url_is_a_json_404_whatever_the_method_and_cookie(tenant_a):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)  # as a client with a cookie and no token
    browser.cookies["sessionid"] = "not-a-session"
    answer = browser.delete("/api/v1/datasets/not-an-id/",
                            HTTP_AUTHORIZATION=f"Bearer {tenant_a.token}")
    assert_error_shape(answer, 404, "not_found")


def test_a_filter_given_twice_is_a_400_naming_it(api, tenant_a):
    answer = api.as_(tenant_a).get("/api/v1/tasks/?state=queued&state=running")
    assert assert_error_shape(answer, 400, "invalid")["fields"] == {
        "state": ["Give this parameter once."]}


def test_bodies_are_documented_as_json_unless_they_carry_a_file(schema):
    create_project = schema["paths"]["/api/v1/projects/"]["post"]["requestBody"]["content"]
    assert set(create_project) == {"application/json"}
    upload = schema["paths"]["/api/v1/datasets/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload


def test_filters_read_blank_as_absent_and_say_so(schema, api, tenant_a):
    listing = schema["paths"]["/api/v1/tasks/"]["get"]["parameters"]
    state = next(p for p in listing if p["name"] == "state")
    assert state["allowEmptyValue"] is True
    assert api.as_(tenant_a).get("/api/v1/tasks/?state=").status_code == 200
