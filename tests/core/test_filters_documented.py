"""Every query parameter a route reads (through core.query_params) is one its operation
documents in the schema: filters cannot be read by hand and left out of the contract."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from core import query_params


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def read_by(api, path):
    names: set[str] = set()
    token = query_params.READ.set(names)
    try:
        answer = api.get(path)
    finally:
        query_params.READ.reset(token)
    return answer, names


def test_every_filter_a_list_reads_is_documented(schema, api, tenant_a, project_of_a):
    checked = 0
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path or path.endswith(("/schema/", "/docs/")):
            continue
        answer, names = read_by(api.as_(tenant_a), path)
        if answer.status_code != 200:
            continue  # a route this role may not read, or one needing a parameter
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert names <= documented, (path, names - documented)
        checked += 1
    assert checked >= 12


def test_the_check_sees_a_filter(api, tenant_a):
    _, names = read_by(api.as_(tenant_a), "/api/v1/tasks/")
    assert {"project", "state", "scenario"} <= names
