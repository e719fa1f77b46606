"""Every GET route of the API, fired at with random cursors, filter values and unknown
parameters, as the owner of a tenant with a little data: never a 500, and every 4xx in the
error shape, a 400 `invalid` naming parameters that were sent (or that the route requires).

The routes come from the URL resolver (the walk of tests/test_tenant_isolation.py), their
filters from the OpenAPI schema: a filter a view reads without documenting it goes unfuzzed,
so document it (extend_schema parameters), as the schema is the public contract anyway.
"""

import base64
import functools
import re
from datetime import timedelta, timezone
from urllib.parse import urlencode

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Account, Api
from tests.test_tenant_isolation import (
    FACTORIES,
    ROUTES,
    Owned,
    Route,
    a_service,
    a_task,
    a_trained_model,
    an_evaluation,
)

UNFUZZED = {"api/v1/schema/", "api/v1/docs/"}  # the documents about the API, not the API
GET_ROUTES = [r for r in ROUTES if "get" in r.methods and r.path not in UNFUZZED]
EXAMPLES_PER_ROUTE = 20
# What a 400 may name besides the query's parameters: the reported object's own property (a
# report that exists for detection evaluations only names `scenario`).
OBJECT_FIELDS = {"scenario"}

# --- values a hostile or clumsy client sends ---------------------------------------------------

EDGES = ["", " ", "\x00", "a\x00b", "\n", "garbage", "null", "[]", "{}", "-1", "0", "1.5",
         "1e309", "nan", "inf", "²", "٣", "9" * 30, "-" + "9" * 30, str(2**63), "a" * 300,
         "true", "FALSE", "9999-12-31", "10000-01-01", "0001-01-01", "2026-02-30",
         "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-03-01T12:00:00+99:00",
         "+10000-01-01T00:00:00Z", "2026-03-01 12:00:00 01:00", "9999-12", "0000-01", "2026-13",
         "all", "csv", "text", "json", "00000000-0000-0000-0000-000000000000"]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
OFFSETS = st.integers(-24 * 60 + 1, 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.one_of(st.none(), OFFSETS)).map(lambda d: d.isoformat()))


def mix(*strategies: st.SearchStrategy) -> st.SearchStrategy:
    """One of the strategies, each about as likely (st.one_of favours the first ones)."""
    return st.sampled_from(strategies).flatmap(lambda chosen: chosen)


# the edges twice: twenty examples a route should meet them, not only random text
HOSTILE = mix(st.sampled_from(EDGES), st.sampled_from(EDGES), TEXT, MOMENTS,
              st.integers(-(10**20), 10**20).map(str), st.uuids().map(str))


def forged_cursor(offset: str | None, reverse: str | None, position: str | None) -> str:
    tokens = {k: v for k, v in (("o", offset), ("r", reverse), ("p", position)) if v is not None}
    return base64.b64encode(urlencode(tokens).encode()).decode()


FORGED = st.builds(forged_cursor,
                   mix(st.none(), st.integers(-5, 10**20).map(str), HOSTILE),
                   mix(st.none(), st.sampled_from(["0", "1", "2", "-1", ""]), HOSTILE),
                   mix(HOSTILE, HOSTILE, st.none()))
CURSORS = mix(FORGED, FORGED, FORGED, HOSTILE)


def values_for(schema: dict) -> st.SearchStrategy[str]:
    """Values a parameter of this OpenAPI schema may meet: plausible ones, and hostile ones."""
    if schema.get("enum"):
        plausible = st.sampled_from([str(v) for v in schema["enum"]])
    elif schema.get("type") == "integer":
        plausible = st.integers(-10, 10**6).map(str)
    elif schema.get("type") == "boolean":
        plausible = st.sampled_from(["true", "false"])
    elif schema.get("format") == "uuid":
        plausible = st.uuids().map(str)
    else:
        plausible = st.one_of(MOMENTS, TEXT)
    return mix(plausible, HOSTILE)


# --- the routes and their documented parameters ------------------------------------------------


@functools.cache
def documented() -> dict[str, dict[str, dict]]:
    """Schema path -> {query parameter name: its schema}, for every GET the schema documents."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {path: {p["name"]: p.get("schema", {}) for p in ops["get"].get("parameters", [])
                   if p["in"] == "query"}
            for path, ops in schema["paths"].items() if "get" in ops}


def schema_path(route: Route) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>",
                        lambda m: "{id}" if m[1] == "pk" else "{" + m[1] + "}", route.path)


def parameters_of(route: Route) -> dict[str, dict]:
    return documented().get(schema_path(route), {})


def queries(route: Route) -> st.SearchStrategy[dict[str, str]]:
    """A query string's parameters: one documented parameter (or the cursor) always, others
    maybe, and unknown names."""
    known = {name: values_for(schema) for name, schema in parameters_of(route).items()}
    known["cursor"] = CURSORS
    known.setdefault("limit", values_for({"type": "integer"}))
    unknown = st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), HOSTILE,
                              max_size=2)

    def around(focus: str) -> st.SearchStrategy[dict[str, str]]:
        others = {name: values for name, values in known.items() if name != focus}
        return st.fixed_dictionaries({focus: known[focus]}, optional=others)

    return st.tuples(st.sampled_from(sorted(known)).flatmap(around), unknown).map(
        lambda pair: {**pair[1], **pair[0]})


# --- the world: a tenant with a little data ----------------------------------------------------


def a_reported_evaluation(api: Api, owner: Account) -> Owned:
    """A succeeded classification evaluation with stored results: its report routes answer."""
    from evaluation import results
    from evaluation.models import Evaluation

    owned = an_evaluation(api, owner)
    key = results.results_key(owner.tenant_id, owned.id)
    results.store(key, {
        "format": results.FORMAT, "version": results.VERSION, "scenario": "classification",
        "labels": ["cat", "dog"], "y_true": [0, 1, 1],
        "images": [{"id": n, "file_name": f"{n}.png"} for n in (1, 2, 3)],
        "scores": [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]})
    Evaluation.objects.for_tenant(owner.tenant_id).filter(id=owned.id).update(
        state="succeeded", results_key=key)
    return owned


def world_of(api: Api, owner: Account, route: Route) -> dict[str, str]:
    """Tenant A's objects, one of each kind the lists show; the values that fill the route."""
    for make in (a_task, a_trained_model, a_reported_evaluation, a_service):
        make(api, owner)
    api.as_(owner).post("/api/v1/projects/", {"name": "Fuzzed"}, format="json")
    if not route.parameters:
        return {}
    factory = {**FACTORIES, "evaluations/": a_reported_evaluation}.get(route.prefix)
    values = dict(factory(api, owner).url_values) if factory else {}
    for name in route.parameters:
        values.setdefault(name, "not-a-real-token")  # a signed link's token: forged
    return values


def assert_answer_in_shape(response, route: Route, query: dict[str, str]) -> None:
    sent = f"GET {route} {query!r}"
    assert response.status_code < 500, f"{sent}: {response.status_code} {response.content[:300]!r}"
    if response.status_code < 400:
        return
    assert response["Content-Type"] == "application/json", sent
    body = response.json()
    assert set(body) == {"error"}, sent
    assert set(body["error"]) == {"code", "message", "fields"}, sent
    error = body["error"]
    assert isinstance(error["fields"], dict), sent
    assert all(isinstance(why, str) for whys in error["fields"].values() for why in whys), sent
    if error["code"] == "invalid":
        named = set(error["fields"])
        assert named, f"{sent}: a 400 invalid that names no parameter: {error}"
        allowed = set(query) | set(parameters_of(route)) | OBJECT_FIELDS
        assert named <= allowed, f"{sent}: names {named}"


def test_the_schema_documents_the_filters_of_the_lists():
    """A route the fuzz cannot see the filters of is a route it does not test."""
    assert {"project", "state", "scenario", "job"} <= set(documented()["/api/v1/tasks/"])
    assert "project" in documented()["/api/v1/models/"]
    assert {"from", "to"} <= set(documented()["/api/v1/billing/usage/"])
    assert len(GET_ROUTES) > 40


@pytest.mark.parametrize("route", GET_ROUTES, ids=str)
def test_random_queries_never_answer_500(api, tenant_a, route):
    client = api.as_(tenant_a)
    url = route.url(world_of(api, tenant_a, route))

    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(query=queries(route))
    def fire(query: dict[str, str]) -> None:
        assert_answer_in_shape(client.get(url, query), route, query)

    fire()
