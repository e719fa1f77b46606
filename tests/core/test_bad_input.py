"""Bad input to every write endpoint: 400 in the error shape, the field named, nothing written."""

from dataclasses import dataclass

import pytest

from accounts.models import ApiToken, Membership, Project, Tenant, User, WebsocketTicket
from eventlog.models import Event
from tests.conftest import add_member

PASSWORD = "correct horse battery staple"
WRITTEN_BY_THE_API = (User, Tenant, Membership, ApiToken, WebsocketTicket, Project, Event)


def rows() -> dict[str, int]:
    """How many rows each table the API writes holds, every tenant counted."""
    return {model.__name__: model._base_manager.count() for model in WRITTEN_BY_THE_API}


@dataclass(frozen=True)
class Raw:
    """A request body sent as these exact bytes."""

    body: bytes


MALFORMED_JSON = Raw(b"{not json")
A_LIST = ["not", "an", "object"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # may name {project} or {member}
    anonymous: bool = False

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


SIGNUP = Endpoint("post", "/api/v1/auth/signup/", anonymous=True)
TOKEN = Endpoint("post", "/api/v1/auth/token/", anonymous=True)
NEW_TOKEN = Endpoint("post", "/api/v1/tokens/")
WS_TICKET = Endpoint("post", "/api/v1/ws-tickets/")
NEW_MEMBER = Endpoint("post", "/api/v1/members/")
CHANGE_MEMBER = Endpoint("patch", "/api/v1/members/{member}/")
NEW_PROJECT = Endpoint("post", "/api/v1/projects/")
CHANGE_PROJECT = Endpoint("patch", "/api/v1/projects/{project}/")
WRITE_ENDPOINTS = [SIGNUP, TOKEN, NEW_TOKEN, WS_TICKET, NEW_MEMBER, CHANGE_MEMBER, NEW_PROJECT,
                   CHANGE_PROJECT]

GOOD_SIGNUP = {"email": "new@example.com", "password": PASSWORD, "tenant": "New"}

# endpoint, body, the field the error must name
BAD_FIELDS = [
    (SIGNUP, {}, "email"),
    (SIGNUP, {}, "password"),
    (SIGNUP, {}, "tenant"),
    (SIGNUP, {**GOOD_SIGNUP, "email": 42}, "email"),
    (SIGNUP, {**GOOD_SIGNUP, "email": "not-an-email"}, "email"),
    (SIGNUP, {**GOOD_SIGNUP, "email": "a" * 250 + "@example.com"}, "email"),
    (SIGNUP, {**GOOD_SIGNUP, "password": "short"}, "password"),
    (SIGNUP, {**GOOD_SIGNUP, "password": "x" * 129}, "password"),
    (SIGNUP, {**GOOD_SIGNUP, "password": {"a": 1}}, "password"),
    (SIGNUP, {**GOOD_SIGNUP, "tenant": "x" * 101}, "tenant"),
    (SIGNUP, {**GOOD_SIGNUP, "tenant": "   "}, "tenant"),
    (SIGNUP, {**GOOD_SIGNUP, "tenant": ["Acme"]}, "tenant"),
    (SIGNUP, {**GOOD_SIGNUP, "tenant": None}, "tenant"),
    (TOKEN, {}, "email"),
    (TOKEN, {}, "password"),
    (TOKEN, {"email": 7, "password": PASSWORD}, "email"),
    (TOKEN, {"email": "a@example.com", "password": "x" * 129}, "password"),
    (TOKEN, {"email": "a@example.com", "password": PASSWORD, "tenant": "not-a-uuid"}, "tenant"),
    (NEW_TOKEN, {"name": "x" * 101}, "name"),
    (NEW_TOKEN, {"name": {"x": 1}}, "name"),
    (NEW_TOKEN, {"name": None}, "name"),
    (NEW_MEMBER, {}, "email"),
    (NEW_MEMBER, {}, "role"),
    (NEW_MEMBER, {"email": "nobody@example.com", "role": "developer"}, "email"),
    (NEW_MEMBER, {"email": ["x@example.com"], "role": "developer"}, "email"),
    (NEW_MEMBER, {"email": "x@example.com", "role": "superuser"}, "role"),
    (NEW_MEMBER, {"email": "x@example.com", "role": ["owner"]}, "role"),
    (CHANGE_MEMBER, {}, "role"),
    (CHANGE_MEMBER, {"role": "superuser"}, "role"),
    (CHANGE_MEMBER, {"role": 3}, "role"),
    (NEW_PROJECT, {}, "name"),
    (NEW_PROJECT, {"name": "x" * 101}, "name"),
    (NEW_PROJECT, {"name": "   "}, "name"),
    (NEW_PROJECT, {"name": ["Defects"]}, "name"),
    (NEW_PROJECT, {"name": None}, "name"),
    (NEW_PROJECT, {"name": "Fine", "description": "x" * 5001}, "description"),
    (NEW_PROJECT, {"name": "Fine", "description": {"x": 1}}, "description"),
    (CHANGE_PROJECT, {"name": "x" * 101}, "name"),
    (CHANGE_PROJECT, {"name": "   "}, "name"),
    (CHANGE_PROJECT, {"name": None}, "name"),
    (CHANGE_PROJECT, {"description": ["x"]}, "description"),
    (CHANGE_PROJECT, {"description": "x" * 5001}, "description"),
]


@pytest.fixture
def send(api, tenant_a, project_of_a):
    """Send a body to an endpoint as tenant A's owner (or anonymously where the route is public)."""
    member = add_member(api, tenant_a, "developer")
    membership = Membership.objects.for_tenant(tenant_a.tenant_id).get(user_id=member.user_id)
    ids = {"project": project_of_a["id"], "member": membership.id}

    def send(endpoint: Endpoint, body: object):
        client = api if endpoint.anonymous else api.as_(tenant_a)
        path = endpoint.path.format(**ids)
        if isinstance(body, Raw):
            return client.generic(endpoint.method.upper(), path, body.body,
                                  content_type="application/json")
        return getattr(client, endpoint.method)(path, body, format="json")

    return send


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(("endpoint", "body", "field"), BAD_FIELDS,
                         ids=[f"{e}-{f}-{i}" for i, (e, _, f) in enumerate(BAD_FIELDS)])
def test_bad_field_is_named_and_nothing_is_written(send, endpoint, body, field):
    before = rows()

    response = send(endpoint, body)

    error = assert_error_shape(response, 400, "invalid")
    assert field in error["fields"], error
    assert all(isinstance(why, str) for whys in error["fields"].values() for why in whys)
    assert rows() == before


@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS, ids=str)
def test_malformed_json_is_refused_and_nothing_is_written(send, endpoint):
    before = rows()

    response = send(endpoint, MALFORMED_JSON)

    error = assert_error_shape(response, 400, "malformed_request")
    assert error["fields"] == {}
    assert rows() == before


@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS, ids=str)
def test_json_that_is_not_an_object_is_refused_and_nothing_is_written(send, endpoint):
    before = rows()

    response = send(endpoint, A_LIST)

    error = assert_error_shape(response, 400, "invalid")
    assert error["fields"] == {}
    assert "dictionary" in error["message"]
    assert rows() == before


def test_viewer_may_not_create_a_project(api, tenant_a):
    viewer = add_member(api, tenant_a, "viewer")
    before = rows()

    response = api.as_(viewer).post("/api/v1/projects/", {"name": "Mine"}, format="json")

    error = assert_error_shape(response, 403, "permission_denied")
    assert error["fields"] == {}
    assert rows() == before


def test_duplicate_project_name_is_refused_on_the_name(api, tenant_a, project_of_a):
    before = rows()

    response = api.as_(tenant_a).post("/api/v1/projects/", {"name": project_of_a["name"]},
                                      format="json")

    assert "name" in assert_error_shape(response, 400, "invalid")["fields"]
    assert rows() == before


def test_renaming_to_a_taken_name_is_refused_on_the_name(api, tenant_a, project_of_a):
    other = api.as_(tenant_a).post("/api/v1/projects/", {"name": "Other"}, format="json").json()
    before = rows()

    response = api.as_(tenant_a).patch(f"/api/v1/projects/{other['id']}/",
                                       {"name": project_of_a["name"]}, format="json")

    assert "name" in assert_error_shape(response, 400, "invalid")["fields"]
    assert rows() == before


def test_archived_project_can_no_longer_change(api, tenant_a, project_of_a):
    as_a = api.as_(tenant_a)
    url = f"/api/v1/projects/{project_of_a['id']}/"
    assert as_a.delete(url).status_code == 204
    before = rows()

    gone = as_a.patch(url, {"name": "Revived"}, format="json")
    named = as_a.patch(url + "?archived=true", {"name": "Revived"}, format="json")
    twice = as_a.delete(url + "?archived=true")

    assert_error_shape(gone, 404, "not_found")
    assert_error_shape(named, 409, "project_archived")
    assert_error_shape(twice, 409, "project_archived")
    assert rows() == before


def test_websocket_ticket_needs_no_body(api, tenant_a):
    assert api.as_(tenant_a).post("/api/v1/ws-tickets/").status_code == 201
    assert api.as_(tenant_a).post("/api/v1/ws-tickets/", {}, format="json").status_code == 201
