"""The world tests live in: real services when they answer (always in CI), tenants, API clients."""

import os
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from core.services import POSTGRES_URL, RABBITMQ_URL, REDIS_URL, reachable

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_skipped_services: dict[str, set[str]] = {}


def require_service(request: pytest.FixtureRequest, name: str, url: str) -> str:
    """The service's URL; in CI an unreachable service fails the test, elsewhere it skips."""
    if reachable(url):
        return url
    if CI:
        pytest.fail(f"{name} is unreachable at {url}; CI runs this test against it.", pytrace=False)
    _skipped_services.setdefault(name, set()).add(request.node.nodeid)
    pytest.skip(f"{name} unreachable at {url} (not CI): real-service test skipped")


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    return require_service(request, "Redis", REDIS_URL)


@pytest.fixture
def rabbitmq_url(request: pytest.FixtureRequest) -> str:
    return require_service(request, "RabbitMQ", RABBITMQ_URL)


@pytest.fixture
def postgres_only(request: pytest.FixtureRequest) -> None:
    """Marks a test that proves PostgreSQL behaviour; in CI it must not be running on SQLite."""
    if connection.vendor != "postgresql":
        if CI and os.environ.get("TEST_DB") != "sqlite":
            pytest.fail("CI must run the suite on PostgreSQL", pytrace=False)
        _skipped_services.setdefault("PostgreSQL", set()).add(request.node.nodeid)
        pytest.skip("needs PostgreSQL")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [f"database: {engine} (CI={CI}); postgres url {POSTGRES_URL}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _skipped_services:
        return
    terminalreporter.section("skipped: service unreachable (not CI), or PostgreSQL-only on SQLite")
    for name, tests in sorted(_skipped_services.items()):
        terminalreporter.write_line(f"{name}: {len(tests)} test(s) skipped, e.g. {min(tests)}")


# --- tenants and clients -----------------------------------------------------------------------


@dataclass
class Account:
    token: str
    user_id: str
    tenant_id: str
    email: str
    password: str


class Api(APIClient):
    """An API client that speaks JSON and can switch identity with `as_(account)`."""

    def as_(self, who: "Account | str | None") -> "Api":
        token = who.token if isinstance(who, Account) else who
        client = Api()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    def generic(self, method, path, data="", content_type="application/json", **extra):
        return super().generic(method, path, data, content_type, **extra)


@pytest.fixture
def api() -> Api:
    return Api()


def sign_up(api: Api, tenant: str = "Acme", email: str | None = None) -> Account:
    """A fresh user owning a fresh tenant, through the public API."""
    email = email or f"{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    response = api.post("/api/v1/auth/signup/", {"email": email, "password": password,
                                                 "tenant": tenant}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    return Account(body["token"], body["user"]["id"], body["tenant"]["id"], email, password)


def add_member(api: Api, owner: Account, role: str) -> Account:
    """A new user with `role` in the owner's tenant, with a token for that tenant."""
    other = sign_up(api, tenant="Own tenant of a member")
    response = api.as_(owner).post("/api/v1/members/", {"email": other.email, "role": role},
                                   format="json")
    assert response.status_code == 201, response.content
    token = api.post("/api/v1/auth/token/", {"email": other.email, "password": other.password,
                                             "tenant": owner.tenant_id}, format="json")
    assert token.status_code == 200, token.content
    return Account(token.json()["token"], other.user_id, owner.tenant_id, other.email,
                   other.password)


@pytest.fixture
def tenant_a(api: Api, db: None) -> Account:
    return sign_up(api, tenant="Tenant A")


@pytest.fixture
def tenant_b(api: Api, db: None) -> Account:
    return sign_up(api, tenant="Tenant B")


@pytest.fixture
def project_of_a(api: Api, tenant_a: Account) -> dict:
    response = api.as_(tenant_a).post("/api/v1/projects/", {"name": "Defects", "description": "x"},
                                      format="json")
    assert response.status_code == 201, response.content
    return response.json()


def console_session(account: Account) -> SessionStore:
    """A signed-in console session of the account's user, as the sign-in page makes one."""
    from accounts.models import User

    user = User.objects.get(pk=account.user_id)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session


@pytest.fixture
def limit_of_three(settings):
    """Three failed sign-ins lock an account, on a clean cache."""
    settings.SIGNIN_FAILURE_LIMIT = 3
    settings.SIGNIN_LOCKOUT_S = 600
    cache.clear()
    yield
    cache.clear()
