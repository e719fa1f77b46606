"""The error registry (core.errors): one table of codes, in the README and the OpenAPI schema."""

import re
from pathlib import Path

import pytest

from core import errors

README = Path(__file__).resolve().parents[2] / "README.md"
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def test_every_code_is_unique_snake_case_with_a_status_and_a_message():
    registered = errors.registry()
    codes = [error.code for error in registered]

    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    for error in registered:
        assert SNAKE.match(error.code), error.code
        assert 400 <= error.status < 600, error
        assert error.default_message.endswith("."), error


def test_every_state_refusal_is_a_409_wrong_state_with_its_own_code():
    refusals = [e for e in errors.registry() if issubclass(e, errors.WrongState)]

    assert len(refusals) > 10  # the specific ones, not only wrong_state
    for error in refusals:
        assert error.status == 409, error
        with pytest.raises(errors.WrongState):  # callers catching WrongState still catch it
            raise error()
    assert {"task_not_running", "task_not_restartable", "dataset_not_ready",
            "not_latest_version", "dataset_archived", "project_archived", "last_owner",
            "evaluation_not_running", "evaluation_not_succeeded", "service_not_running",
            "service_ended"} <= {error.code for error in refusals}


def test_a_specific_refusal_keeps_its_message_or_the_default():
    assert errors.TaskNotRunning().message == errors.TaskNotRunning.default_message
    assert errors.TaskNotRunning("The task is failed.").message == "The task is failed."


def test_the_readme_table_is_the_registry():
    text = README.read_text()
    between = re.search(r"<!-- error-codes:start -->\n(.*?)\n<!-- error-codes:end -->", text,
                        re.DOTALL)

    assert between is not None, "README.md lost its error-codes markers"
    assert between.group(1) == errors.markdown_table(), (
        "README.md's error codes differ from core/errors.py; paste the output of "
        "python -c 'from core.errors import markdown_table; print(markdown_table())'")


# Middleware, fallbacks and the prediction gateway answer before DRF, with a literal code.
LITERAL = re.compile(r'error_(?:response|body)\(\s*"([a-z_]+)"'
                     r'|_refuse\(send, headers, \d+, "([a-z_]+)"')


def test_every_code_answered_outside_drf_is_in_the_registry():
    root = README.parent
    sources = [path for path in root.rglob("*.py")
               if not {".venv", "tests", ".git", "var", "node_modules"}
               & set(path.relative_to(root).parts)]
    literal = {code for path in sources for match in LITERAL.finditer(path.read_text())
               for code in match.groups() if code}

    assert {"malformed_request", "server_error", "not_found"} <= literal  # the scan sees them
    assert literal <= {error.code for error in errors.registry()}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_publishes_every_code_with_its_status_and_meaning(schema):
    component = schema["components"]["schemas"]["ErrorCode"]

    assert component["enum"] == [error.code for error in errors.registry()]
    for error in errors.registry():
        assert f"`{error.code}` ({error.status}): {error.default_message}" in (
            component["description"])
    shape = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert shape["required"] == ["code", "message", "fields"]
    assert shape["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}


def _resolved(schema: dict, shape: dict) -> dict:
    """An answer's body schema, its $ref (one component per set of codes) resolved."""
    if "$ref" in shape:
        return schema["components"]["schemas"][shape["$ref"].rsplit("/", 1)[-1]]
    return shape


def _codes(schema: dict, path: str, method: str, status: str = "409") -> list[str]:
    response = schema["paths"][path][method]["responses"][status]
    error = _resolved(schema, response["content"]["application/json"]["schema"])
    return error["properties"]["error"]["properties"]["code"]["enum"]


@pytest.mark.parametrize(("path", "method", "codes"), [
    ("/api/v1/tasks/{id}/stop/", "post", ["task_not_running"]),
    ("/api/v1/tasks/{id}/restart/", "post", ["task_not_restartable"]),
    ("/api/v1/datasets/{id}/", "delete", ["dataset_archived"]),
    ("/api/v1/datasets/{id}/corrections/", "post",
     ["dataset_not_ready", "not_latest_version", "dataset_unreadable"]),
    ("/api/v1/projects/{id}/", "patch", ["version_conflict", "project_archived"]),
    ("/api/v1/projects/{id}/", "delete", ["project_archived"]),
    ("/api/v1/members/{id}/", "delete", ["last_owner"]),
    ("/api/v1/evaluations/{id}/stop/", "post", ["evaluation_not_running"]),
    ("/api/v1/evaluations/{id}/confusion/", "get", ["evaluation_not_succeeded"]),
    ("/api/v1/services/{id}/stop/", "post", ["service_ended"]),
    ("/api/v1/services/{id}/predict/", "post", ["service_not_running"]),
])
def test_each_refusing_operation_names_its_codes(schema, path, method, codes):
    assert _codes(schema, path, method) == codes
    description = schema["paths"][path][method]["responses"]["409"]["description"]
    assert all(f"`{code}`" in description for code in codes)


def test_every_specific_refusal_is_documented_on_an_operation(schema):
    documented = {code for path in schema["paths"].values() for operation in path.values()
                  for code in _enum_409(schema, operation)}
    # wrong_state is the fallback; already_metered guards billing's own invariant (no route)
    internal = {"wrong_state", "already_metered"}
    refusals = {e.code for e in errors.registry() if issubclass(e, errors.WrongState)}

    assert refusals - internal <= documented, refusals - internal - documented


def _enum_409(schema: dict, operation: dict) -> list[str]:
    response = operation.get("responses", {}).get("409", {})
    body = _resolved(schema, response.get("content", {}).get("application/json", {})
                     .get("schema", {}))
    code = body.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    return code.get("enum", [])


def test_an_operation_that_refuses_nothing_documents_no_409(schema):
    assert "409" not in schema["paths"]["/api/v1/projects/{id}/"]["get"]["responses"]
