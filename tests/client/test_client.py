"""The Python client (client/) against the published schema and a scripted server: its routes
and models cannot drift from the schema, errors map to exceptions and exit codes, 429/503 are
retried as Retry-After says, pages are followed."""

import dataclasses
import json

import httpx
import pytest
from automl_client import cli, errors, models
from automl_client.client import ROUTES, Client
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_route_the_client_calls_is_in_the_schema(schema):
    assert len(ROUTES) > 20
    for method, path in ROUTES:
        assert path in schema["paths"], path
        assert method.lower() in schema["paths"][path], (method, path)


@pytest.mark.parametrize("model", [
    cls for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, models.Resource) and cls.COMPONENT])
def test_every_model_field_is_a_field_of_its_schema_component(schema, model):
    component = schema["components"]["schemas"][model.COMPONENT]
    names = {field.name for field in dataclasses.fields(model)}
    assert names <= set(component["properties"]), names - set(component["properties"])
    required = {f.name for f in dataclasses.fields(model)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert required <= set(component.get("required", [])), (
        "a field the client requires may be left out", required - set(component["required"]))


def scripted(*answers):
    """A client whose server answers `answers` in turn; the requests and sleeps it saw."""
    seen, slept = [], []
    queue = list(answers)

    def handle(request):
        seen.append(request)
        status, body, headers = queue.pop(0)
        return httpx.Response(status, json=body, headers=headers)

    client = Client("http://platform.test", "aml_x", sleep=slept.append,
                    http=httpx.Client(base_url="http://platform.test",
                                      transport=httpx.MockTransport(handle)))
    return client, seen, slept


def error(code, message="no", fields=None):
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def test_a_429_is_retried_after_the_seconds_it_says():
    client, seen, slept = scripted((429, error("throttled"), {"Retry-After": "7"}),
                                   (200, {"currency": "USD", "balance": 5, "frozen": 0,
                                          "available": 5}, {}))
    assert client.wallet().available == 5
    assert len(seen) == 2 and 7 <= slept[0] <= 7.8


def test_a_503_is_retried_with_backoff_then_raised():
    answers = [(503, error("unavailable"), {})] * 5
    client, seen, slept = scripted(*answers)
    with pytest.raises(errors.Unavailable) as raised:
        client.wallet()
    assert len(seen) == 5 and slept == sorted(slept) and raised.value.code == "unavailable"


def test_payments_not_configured_is_not_retried():
    client, seen, _ = scripted((503, error("payments_not_configured"), {}))
    with pytest.raises(errors.Unavailable):
        client.wallet()
    assert len(seen) == 1


@pytest.mark.parametrize("status, cls, exit_code", [
    (400, errors.BadRequest, cli.EXIT_REFUSED), (401, errors.Unauthorized, cli.EXIT_AUTH),
    (402, errors.PaymentRequired, cli.EXIT_FUNDS), (403, errors.Forbidden, cli.EXIT_AUTH),
    (404, errors.NotFound, cli.EXIT_NOT_FOUND), (409, errors.Conflict, cli.EXIT_CONFLICT),
    (413, errors.PayloadTooLarge, cli.EXIT_REFUSED), (500, errors.ServerError, cli.EXIT_SERVER),
])
def test_each_status_raises_its_exception_with_code_message_and_fields(status, cls, exit_code):
    client, _, _ = scripted((status, error("some_code", "Why.", {"name": ["Bad."]}), {}))
    with pytest.raises(cls) as raised:
        client.task("00000000-0000-4000-8000-000000000000")
    assert (raised.value.code, raised.value.message, raised.value.fields) == (
        "some_code", "Why.", {"name": ["Bad."]})
    assert raised.value.status == status
    assert next((code for c, code in cli.EXIT_BY_ERROR.items() if isinstance(raised.value, c)),
                cli.EXIT_REFUSED) == exit_code


def test_pages_are_followed_to_the_end():
    task = {"id": "t", "project": "p", "name": "n", "scenario": "classification",
            "algorithm": "small_cnn", "state": "queued"}
    client, seen, _ = scripted(
        (200, {"results": [task], "next": "http://platform.test/api/v1/tasks/?cursor=abc"}, {}),
        (200, {"results": [{**task, "id": "u"}], "next": None}, {}))
    assert [t.id for t in client.tasks(state="queued")] == ["t", "u"]
    assert seen[0].url.params["state"] == "queued" and seen[1].url.params["cursor"] == "abc"


def test_the_cli_exit_code_and_message_of_an_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AUTOML_CONFIG", str(tmp_path / "credentials.json"))

    def handle(request):
        return httpx.Response(404, json=error("not_found", "Task not found."))

    real = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real(
        transport=httpx.MockTransport(handle), **kw))
    code = cli.main(["--url", "http://platform.test", "--token", "aml_x", "tasks", "watch",
                     "00000000-0000-4000-8000-000000000000"])
    assert code == cli.EXIT_NOT_FOUND
    assert "not_found: Task not found." in capsys.readouterr().err


def test_the_cli_prints_json_or_one_field(monkeypatch, capsys):
    body = {"currency": "USD", "balance": 0, "frozen": 0, "available": 0, "group_by": "spec",
            "results": [{"key": "cpu", "seconds": 60, "amount": 12, "postpaid_amount": 12,
                         "prepaid_seconds": 0}], "total": 12, "seconds": 60.0}

    real = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)), **kw))
    base = ["--url", "http://platform.test", "--token", "aml_x"]
    assert cli.main([*base, "--json", "billing", "usage", "--group-by", "spec"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 12
    assert cli.main([*base, "--print", "total", "billing", "usage"]) == 0
    assert capsys.readouterr().out.strip() == "12"
