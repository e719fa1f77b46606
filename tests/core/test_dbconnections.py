"""Database connections: bounded per process, never outliving their thread, and a full pool
answered as a 503 to retry. The burst against a real server is tests/e2e/test_db_connections.py.
"""

import threading
from unittest import mock

import pytest
from django.db import OperationalError, connections
from django.test import RequestFactory
from psycopg_pool import PoolTimeout

from config.settings.base import database_from_env
from core.views import server_error


def _pool_timeout() -> OperationalError:
    """What Django raises when the pool lent nothing within its timeout."""
    error = OperationalError("couldn't get a connection after 10.00 sec")
    error.__cause__ = PoolTimeout("couldn't get a connection after 10.00 sec")
    return error


def test_postgresql_gets_a_bounded_pool_and_keeps_its_prepared_append(monkeypatch):
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "7")
    monkeypatch.setenv("DATABASE_POOL_MIN_SIZE", "3")
    db = database_from_env("postgres://someone@db.example:5432/automl")
    assert db["OPTIONS"]["pool"]["max_size"] == 7
    assert db["OPTIONS"]["pool"]["min_size"] == 3
    assert db["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert db["OPTIONS"]["prepare_threshold"] == 1 << 30  # the event-log append still prepares


def test_the_pool_can_be_turned_off_for_pgbouncer(monkeypatch):
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "0")
    db = database_from_env("postgres://someone@db.example:5432/automl")
    assert "pool" not in db["OPTIONS"]
    assert db["CONN_MAX_AGE"] == 60


def test_sqlite_has_no_pool():
    assert "pool" not in database_from_env("sqlite:////tmp/x.sqlite3")["OPTIONS"]


@pytest.mark.django_db(transaction=True)
def test_a_thread_that_ends_closes_its_connection():
    """A thread that queried and ended without closing (no request_finished, no job end) gives
    its connection back: under ASGI every request is such a thread."""
    seen = {}

    def query() -> None:
        wrapper = connections["default"]
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen["wrapper"] = wrapper
        seen["open"] = wrapper.connection is not None

    thread = threading.Thread(target=query)
    thread.start()
    thread.join()
    assert seen["open"]
    assert seen["wrapper"].connection is None


def test_a_full_pool_is_a_503_with_retry_after(api, tenant_a):
    with mock.patch("accounts.views.ProjectListView.get_queryset", side_effect=_pool_timeout()):
        response = api.as_(tenant_a).get("/api/v1/projects/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response["Retry-After"]) > 0


def test_a_full_pool_outside_the_api_views_is_a_503_too():
    """Middleware, HTML views and the prediction gateway end in Django's 500 handler."""
    request = RequestFactory().get("/console/")
    try:
        raise _pool_timeout()
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    try:
        raise OperationalError("division by zero")
    except OperationalError:
        assert server_error(request).status_code == 500


def test_a_server_out_of_connection_slots_is_a_503():
    from core.dbconnections import pool_exhausted

    error = OperationalError('connection failed: FATAL:  too many connections for role "x"')
    assert pool_exhausted(error)
    assert not pool_exhausted(OperationalError("deadlock detected"))
    assert not pool_exhausted(ValueError("too many clients already"))
