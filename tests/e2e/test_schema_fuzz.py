"""Schemathesis over the whole published schema, against a real `manage.py serve`.

Pass one: every operation, with a tenant's token, on generated requests (valid and invalid),
under every check that applies: no 500, every status and body as the schema documents it.
A 502/503 the operation documents (payments not configured on this install) is an answer, not
a crash; an undocumented one still fails.

Pass two: the same operations with another tenant's token, aimed at the first tenant's
objects: never a 2xx.
"""

import io
import uuid
import zipfile

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.e2e.servers import MANAGE, Processes, clean_env, free_port, manage, wait_for

# positive_data_acceptance expects every schema-valid request to succeed; here validity goes
# beyond what a schema says (ids that must name this tenant's objects, an opaque cursor the API
# handed out, a password strong enough, a zip that is a dataset), each refused with a
# documented 400 naming the field. not_a_server_error is replaced by documented_server_error.
EXCLUDED = [openapi_checks.positive_data_acceptance, st_checks.not_a_server_error]
EXAMPLES = 5  # per operation and mode: the whole schema in about two minutes on two cores


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A served platform with two tenants; the first owns a project, a dataset and a token."""
    tmp = tmp_path_factory.mktemp("schema-fuzz")
    processes = Processes(tmp)
    port = free_port()
    env = clean_env(DATA_DIR=str(tmp), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", LOG_LEVEL="WARNING", INPROCESS_WORKER="false",
                    API_THROTTLE_RATE="100000/min", ANON_THROTTLE_RATE="100000/min",
                    SIGNIN_FAILURE_LIMIT="100000")
    manage(env, "migrate", "--noinput")
    manage(env, "seed_specs")
    processes.start("serve", [*MANAGE, "serve", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/api/v1/health/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(healthy, timeout=90, what="manage.py serve to answer", processes=processes)
    tenants = [requests.post(f"{base}/api/v1/auth/signup/", json={
        "email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "a long password",
        "tenant": name}, timeout=30).json() for name in ("Owner", "Stranger")]
    yield {"base": base, "tokens": [t["token"] for t in tenants], "processes": processes}
    processes.stop_all()


def owned_objects(base: str, token: str) -> list[str]:
    """Ids of objects the token's tenant owns: a project, a dataset, a token, a member."""
    headers = {"Authorization": f"Bearer {token}"}
    project = requests.post(f"{base}/api/v1/projects/", json={"name": "Mine"},
                            headers=headers, timeout=30).json()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("cat/1.png", b"not really a png")
    dataset = requests.post(f"{base}/api/v1/datasets/", headers=headers, timeout=30, data={
        "project": project["id"], "name": "d", "kind": "classification",
        "format": "folders"}, files={"file": ("d.zip", archive.getvalue())}).json()
    issued = requests.post(f"{base}/api/v1/tokens/", json={"name": "ci"}, headers=headers,
                           timeout=30).json()
    members = requests.get(f"{base}/api/v1/members/", headers=headers, timeout=30).json()
    return [project["id"], dataset["id"], issued["id"], members["results"][0]["id"]]


@pytest.fixture(scope="module")
def api_schema(live):
    """The published schema, less its security schemes: the test sends the tenant's token
    itself, so no generated (or deliberately broken) credential replaces it."""
    raw = requests.get(f"{live['base']}/api/v1/schema/", timeout=60).json()
    raw["components"].pop("securitySchemes", None)
    for item in raw["paths"].values():
        for operation in item.values():
            operation.pop("security", None)
    loaded = schemathesis.openapi.from_dict(raw)
    loaded.config.update(base_url=live["base"])
    return loaded


def documented_server_error(ctx, response, case) -> None:
    """not_a_server_error, except for a 502/503 the operation documents (an install without
    Stripe keys answers top-ups with 503 payments_not_configured, as the schema says)."""
    if response.status_code in (502, 503) and str(response.status_code) in (
            case.operation.definition.raw.get("responses", {})):
        return
    st_checks.not_a_server_error(ctx, response, case)


def fuzz(operation, mode: GenerationMode, token: str) -> None:
    """EXAMPLES generated requests of `mode` for the operation, each checked."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def check(case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                               excluded_checks=EXCLUDED,
                               additional_checks=[documented_server_error], timeout=30)

    check()


def test_every_operation_answers_as_documented(live, api_schema):
    failures, tested = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            tested += 1
            try:
                fuzz(operation, mode, live["tokens"][0])
            except Unsatisfiable:  # nothing to break: no parameter, or any string is valid
                assert mode == GenerationMode.NEGATIVE, operation.path
            except (Exception, BaseExceptionGroup) as exc:  # every operation's, not the first's
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): "
                                f"{str(exc)[:1500]}")
    assert tested > 100
    assert not failures, "\n\n".join(failures)


def test_another_tenant_never_gets_a_2xx_on_what_it_does_not_own(live, api_schema):
    base, (owner, stranger) = live["base"], live["tokens"]
    ids = owned_objects(base, owner)
    seen = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if "{id}" not in operation.path:
            continue
        for object_id in ids:
            case = operation.Case(path_parameters={"id": object_id})
            response = case.call(base_url=base,
                                 headers={"Authorization": f"Bearer {stranger}"}, timeout=30)
            seen += 1
            assert not 200 <= response.status_code < 300, (
                f"{operation.method.upper()} {operation.path} on another tenant's {object_id}: "
                f"{response.status_code} {response.text[:300]}")
            # and the owner does reach it, so the pass aims at real objects
    assert seen > 100
    mine = requests.get(f"{base}/api/v1/projects/{ids[0]}/", timeout=30,
                        headers={"Authorization": f"Bearer {owner}"})
    assert mine.status_code == 200


