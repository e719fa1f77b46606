"""Tenant isolation on every route the API has, found by walking the URL resolver.

A new route is covered the day it is added, without anyone remembering to:
- a route with an id needs a factory in FACTORIES that makes tenant A's object for it (the test
  fails with "add a factory for <route>" until there is one);
- a route that answers without a token must be named in PUBLIC_ROUTES, a conscious choice;
- a route whose objects belong to the platform, not to a tenant (the compute catalogue), must be
  named in SHARED_ROUTES, and only platform staff may change them.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from accounts.models import ApiToken, Membership, Project
from eventlog.models import Event
from tests.conftest import Account, Api, add_member
from tests.feed import read_feed

API_PREFIX = "api/v1/"
PUBLIC_ROUTES = {
    "api/v1/health/",
    "api/v1/auth/signup/",
    "api/v1/auth/token/",
    "api/v1/schema/",
    "api/v1/docs/",
    "api/v1/billing/stripe/webhook/",  # Stripe calls it; the signature is its authentication
    "api/v1/evaluation-previews/<str:token>/",  # a signed, short-lived link is its credential
}
# Lists that need a query parameter to answer at all.
REQUIRED_QUERY = {"api/v1/billing/statements/": "?month=2026-01"}
# Platform-wide objects every tenant reads and only staff change.
SHARED_ROUTES = {"api/v1/billing/specs/<uuid:pk>/"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# A body that would change anything it reached, were isolation broken.
HOSTILE_BODY = {"name": "taken over", "description": "taken over", "role": "owner"}
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


# --- the routes, from the resolver -------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    path: str  # as declared, e.g. "api/v1/projects/<uuid:pk>/"
    view: type

    @property
    def parameters(self) -> dict[str, str]:
        """Parameter name -> converter name."""
        return {m["name"]: m["converter"] or "str" for m in _PARAMETER.finditer(self.path)}

    @property
    def prefix(self) -> str:
        """The route below /api/v1/ up to its first parameter, e.g. "projects/"."""
        return self.path.removeprefix(API_PREFIX).split("<", 1)[0]

    @property
    def methods(self) -> list[str]:
        """The HTTP methods the view implements."""
        return [m for m in HTTP_METHODS if hasattr(self.view, m)]

    @property
    def public(self) -> bool:
        return self.path in PUBLIC_ROUTES

    def url(self, values: dict[str, str]) -> str:
        missing = set(self.parameters) - set(values)
        assert not missing, (
            f"add a factory for {self.path}: its factory gives no value for {sorted(missing)}")
        return "/" + _PARAMETER.sub(lambda m: str(values[m["name"]]), self.path)

    def url_of_nothing(self) -> str:
        """The route filled with ids nobody has."""
        return self.url({name: str(uuid.uuid4()) for name in self.parameters})

    def __str__(self) -> str:
        return self.path


def _walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        path = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, path)
        else:
            yield path, entry


def api_routes() -> list[Route]:
    """Every route under /api/v1/, included ones too."""
    routes = []
    for path, entry in _walk(get_resolver().url_patterns):
        if not path.startswith(API_PREFIX):
            continue
        assert isinstance(entry.pattern, RoutePattern), (
            f"{path}: declare API routes with path() so that this walk can fill their parameters")
        routes.append(Route(path, entry.callback.view_class))
    return routes


ROUTES = api_routes()
# A public route with a parameter (a signed link) is its own credential: tested where it lives.
ROUTES_WITH_IDS = [r for r in ROUTES
                   if r.parameters and r.path not in SHARED_ROUTES | PUBLIC_ROUTES]
PRIVATE_COLLECTIONS = [r for r in ROUTES
                       if not r.parameters and not r.public and "get" in r.methods]
PRIVATE_CALLS = [(r, m) for r in ROUTES if not r.public for m in r.methods]
PUBLIC_CALLS = [(r, m) for r in ROUTES if r.public for m in r.methods]


def call(client: Api, method: str, url: str):
    if method in {"get", "delete"}:
        return getattr(client, method)(url)
    return getattr(client, method)(url, HOSTILE_BODY, format="json")


# --- tenant A's objects, one factory per route prefix with an id -------------------------------


@dataclass
class Owned:
    """One of tenant A's objects: what fills a route, and how to see it is untouched."""

    model: type[models.Model]
    id: str
    still_works: Callable[[], None]
    url_values: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url_values = self.url_values or {"pk": self.id}

    def snapshot(self) -> tuple[dict, int]:
        row = self.model._base_manager.filter(pk=self.id).values().get()
        return row, Event.objects.filter(stream_id=str(self.id)).count()


def a_project(api: Api, owner: Account) -> Owned:
    created = api.as_(owner).post("/api/v1/projects/", {"name": "Plans of A", "description": "A"},
                                  format="json").json()

    def still_works() -> None:
        now = api.as_(owner).get(f"/api/v1/projects/{created['id']}/").json()
        assert (now["name"], now["description"], now["version"], now["archived_at"]) == (
            created["name"], created["description"], created["version"], None)

    return Owned(Project, created["id"], still_works)


def a_token(api: Api, owner: Account) -> Owned:
    created = api.as_(owner).post("/api/v1/tokens/", {"name": "spare"}, format="json").json()

    def still_works() -> None:
        assert api.as_(created["token"]).get("/api/v1/me/").status_code == 200

    return Owned(ApiToken, created["id"], still_works)


def a_membership(api: Api, owner: Account) -> Owned:
    member = add_member(api, owner, "developer")
    membership = Membership.objects.for_tenant(owner.tenant_id).get(user_id=member.user_id)

    def still_works() -> None:
        assert api.as_(owner).get(f"/api/v1/members/{membership.id}/").json()["role"] == "developer"
        assert api.as_(member).get("/api/v1/me/").json()["role"] == "developer"

    return Owned(Membership, str(membership.id), still_works)


def a_dataset(api: Api, owner: Account) -> Owned:
    from datasets.models import Dataset
    from tests.datasets.zips import folders_files, make_zip, upload, validate

    project = api.as_(owner).post("/api/v1/projects/", {"name": "Data of A"},
                                  format="json").json()
    created = upload(api.as_(owner), project["id"], make_zip(folders_files())).json()
    validate(created["id"])

    def still_works() -> None:
        now = api.as_(owner).get(f"/api/v1/datasets/{created['id']}/").json()
        assert (now["name"], now["state"], now["version"], now["archived_at"]) == (
            created["name"], "ready", 1, None)
        versions = api.as_(owner).get(f"/api/v1/datasets/{created['id']}/versions/").json()
        assert [d["id"] for d in versions["results"]] == [created["id"]]

    return Owned(Dataset, created["id"], still_works)


def a_task(api: Api, owner: Account) -> Owned:
    """A task read-model row written directly, with one log line (tasklogs' routes need no more)."""
    from datetime import UTC, datetime

    from tasklogs.api import LogLineIn, write
    from tasks.models import Task
    from tests.tasklogs.conftest import make_task

    task = make_task(owner.tenant_id)
    write(owner.tenant_id, task.id, [LogLineIn(datetime.now(UTC), "node-0", "INFO", "A's log")])

    def still_works() -> None:
        logs = api.as_(owner).get(f"/api/v1/tasks/{task.id}/logs/").json()
        assert [line["message"] for line in logs["results"]] == ["A's log"]

    return Owned(Task, str(task.id), still_works)


def a_trained_model(api: Api, owner: Account) -> Owned:
    """A trained-model row as a succeeded task's projection leaves it."""
    from django.utils import timezone

    from modelregistry.models import TrainedModel

    model = TrainedModel.objects.create(
        id=uuid.uuid4(), tenant_id=owner.tenant_id, project_id=uuid.uuid4(),
        task_id=uuid.uuid4(), version=1, scenario="classification", model_name="small_cnn",
        labels=["cat", "dog"], metrics={"accuracy": 0.9}, artifact_key="models/x.zip",
        input_size=[32, 32], train_dataset_id=uuid.uuid4(), created_at=timezone.now())

    def still_works() -> None:
        body = api.as_(owner).get(f"/api/v1/models/{model.id}/").json()
        assert (body["labels"], body["metrics"]) == (["cat", "dog"], {"accuracy": 0.9})

    return Owned(TrainedModel, str(model.id), still_works)


def an_evaluation(api: Api, owner: Account) -> Owned:
    """An evaluation read-model row as a queued run's projection leaves it."""
    from django.utils import timezone

    from evaluation.models import Evaluation

    now = timezone.now()
    evaluation = Evaluation.objects.create(
        id=uuid.uuid4(), tenant_id=owner.tenant_id, project_id=uuid.uuid4(),
        model_id=uuid.uuid4(), dataset_id=uuid.uuid4(), scenario="classification",
        options={"iou": 0.5, "score_threshold": 0.5}, spec_id=uuid.uuid4(), spec_name="cpu",
        billing_mode="postpaid", state="queued", created_at=now, updated_at=now,
        last_position=0)

    def still_works() -> None:
        body = api.as_(owner).get(f"/api/v1/evaluations/{evaluation.id}/").json()
        assert (body["state"], body["model"]) == ("queued", str(evaluation.model_id))

    return Owned(Evaluation, str(evaluation.id), still_works)


def a_service(api: Api, owner: Account) -> Owned:
    """A service read-model row as a running service's projection leaves it."""
    from django.utils import timezone

    from serving.models import Service

    now = timezone.now()
    service = Service.objects.create(
        id=uuid.uuid4(), tenant_id=owner.tenant_id, project_id=uuid.uuid4(),
        model_id=uuid.uuid4(), name="secret service", spec_id=uuid.uuid4(), spec_name="cpu",
        billing_mode="postpaid", max_runtime_s=7200, instance_count=1, state="running",
        created_at=now, updated_at=now, last_position=0)

    def still_works() -> None:
        body = api.as_(owner).get(f"/api/v1/services/{service.id}/").json()
        assert (body["state"], body["name"]) == ("running", "secret service")

    return Owned(Service, str(service.id), still_works)


FACTORIES: dict[str, Callable[[Api, Account], Owned]] = {
    "services/": a_service,
    "models/": a_trained_model,
    "projects/": a_project,
    "tokens/": a_token,
    "members/": a_membership,
    "datasets/": a_dataset,
    "tasks/": a_task,
    "evaluations/": an_evaluation,
}


# --- the tests ---------------------------------------------------------------------------------


def test_the_walk_finds_the_routes_we_know():
    paths = {r.path for r in ROUTES}
    assert {"api/v1/projects/", "api/v1/projects/<uuid:pk>/", "api/v1/events/"} <= paths
    assert paths >= PUBLIC_ROUTES, f"public routes that no longer exist: {PUBLIC_ROUTES - paths}"


def test_shared_catalogue_objects_are_read_by_all_and_changed_by_staff_only(
        api, tenant_a, tenant_b):
    from billing.models import ComputeSpec

    assert {r.path for r in ROUTES} >= SHARED_ROUTES
    spec = ComputeSpec.objects.create(name="shared", kind="cpu", cpu_cores=1, memory_gib=1,
                                      price_per_hour=10)
    for who in (tenant_a, tenant_b):
        assert api.as_(who).get(f"/api/v1/billing/specs/{spec.id}/").status_code == 200
        changed = api.as_(who).patch(f"/api/v1/billing/specs/{spec.id}/",
                                     {"price_per_hour": 1}, format="json")
        assert changed.status_code == 403
    spec.refresh_from_db()
    assert spec.price_per_hour == 10


@pytest.mark.parametrize("route", ROUTES_WITH_IDS, ids=str)
def test_another_tenants_object_answers_like_a_missing_one(api, tenant_a, tenant_b, route):
    factory = FACTORIES.get(route.prefix)
    if factory is None:
        pytest.fail(f"add a factory for {route.path} (prefix {route.prefix!r}) to FACTORIES in "
                    f"{__name__}: it makes tenant A's object of that kind", pytrace=False)
    owned = factory(api, tenant_a)
    before = owned.snapshot()
    as_b = api.as_(tenant_b)

    for method in route.methods:
        theirs = call(as_b, method, route.url(owned.url_values))
        nobodys = call(as_b, method, route.url_of_nothing())
        assert theirs.status_code == 404, f"{method.upper()} {route}: {theirs.content!r}"
        assert theirs.json()["error"]["code"] == "not_found"
        assert theirs.json() == nobodys.json(), f"{method.upper()} {route} tells the two apart"

    assert owned.snapshot() == before
    owned.still_works()


@pytest.fixture
def world_of_a(api, tenant_a) -> set[str]:
    """Tenant A with data on every collection: a renamed project, a spare token, a member.

    Returns the strings that must never reach tenant B.
    """
    as_a = api.as_(tenant_a)
    project = as_a.post("/api/v1/projects/", {"name": f"Plans of A {uuid.uuid4().hex[:6]}"},
                        format="json").json()
    renamed = as_a.patch(f"/api/v1/projects/{project['id']}/",
                         {"name": f"Secret plans of A {uuid.uuid4().hex[:6]}"}, format="json")
    spare = as_a.post("/api/v1/tokens/", {"name": "spare"}, format="json").json()
    member = add_member(api, tenant_a, "viewer")
    memberships = Membership.objects.for_tenant(tenant_a.tenant_id).values_list("id", flat=True)
    tokens = ApiToken.objects.for_tenant(tenant_a.tenant_id).values_list("id", "prefix")
    return {
        tenant_a.tenant_id, tenant_a.user_id, tenant_a.email, member.user_id, member.email,
        project["id"], project["name"], renamed.json()["name"], spare["id"], spare["prefix"],
        *(str(m) for m in memberships), *(str(t) for pair in tokens for t in pair),
    }


@pytest.mark.django_db(transaction=True)  # the event feed shows committed events only
@pytest.mark.parametrize("route", PRIVATE_COLLECTIONS, ids=str)
def test_lists_never_show_another_tenants_data(api, transactional_db, world_of_a, tenant_b,
                                               route):
    as_b = api.as_(tenant_b)
    own_project = as_b.post("/api/v1/projects/", {"name": "Plans of B"}, format="json").json()
    if route.prefix == "events/":
        read_feed(as_b, until=lambda events: own_project["id"] in str(events))

    response = as_b.get(route.url({}) + REQUIRED_QUERY.get(route.path, ""))

    assert response.status_code == 200, response.content
    text = response.content.decode()
    leaked = sorted(marker for marker in world_of_a if marker in text)
    assert not leaked, f"GET {route} shows tenant A's {leaked}"
    if route.prefix in {"projects/", "events/"}:  # the walk is not vacuous: B sees its own
        assert own_project["id"] in text


@pytest.mark.django_db(transaction=True)
def test_event_feed_from_the_start_shows_only_the_callers_tenant(api, transactional_db,
                                                                  world_of_a, tenant_a, tenant_b):
    api.as_(tenant_b).post("/api/v1/projects/", {"name": "Plans of B"}, format="json")

    feed_of_b = read_feed(api.as_(tenant_b), "?after=0", until=lambda events: len(events) >= 1)
    feed_of_a = read_feed(api.as_(tenant_a), "?after=0", until=lambda events: len(events) >= 2)

    assert [e["type"] for e in feed_of_b] == ["ProjectCreated"]
    assert [e["type"] for e in feed_of_a] == ["ProjectCreated", "ProjectRenamed"]
    assert not {e["stream_id"] for e in feed_of_a} & {e["stream_id"] for e in feed_of_b}


@pytest.mark.parametrize(("route", "method"), PRIVATE_CALLS,
                         ids=[f"{m.upper()} {r}" for r, m in PRIVATE_CALLS])
def test_every_private_route_needs_a_token(api, db, route, method):
    response = call(api, method, route.url_of_nothing())

    assert response.status_code == 401, (
        f"{method.upper()} {route} answers {response.status_code} without a token; if it is "
        "meant to be public, add it to PUBLIC_ROUTES")
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("route", "method"), PUBLIC_CALLS,
                         ids=[f"{m.upper()} {r}" for r, m in PUBLIC_CALLS])
def test_public_routes_answer_without_a_token(api, db, route, method):
    response = call(api, method, route.url_of_nothing())

    assert response.status_code not in {401, 403}, f"{method.upper()} {route}: {response.content!r}"
