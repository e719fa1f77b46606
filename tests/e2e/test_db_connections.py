"""A burst of concurrent requests against a real `manage.py serve` on PostgreSQL, whose role
may hold only a few connections: every request is answered (no 5xx), the process never holds
more connections than its pool's bound, and once the burst is over they fall back to the
pool's idle size.

Before the pool, every request thread kept its own connection for CONN_MAX_AGE: 40 clients
meant 40 connections, past the role's limit ("too many connections"), answered 500, and the
dead threads' connections stayed open after the burst.
"""

import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlparse, urlunparse

import pytest

from core.services import POSTGRES_URL
from tests.conftest import require_service

from .servers import MANAGE, Client, Processes, clean_env, free_port, manage, wait_for, wait_healthy

ROLE_LIMIT = 8  # connections the server's role may hold, whatever the server wants
POOL_MAX = 4  # the server's pool: at most this many connections, whatever the load
POOL_MIN = 1  # kept open when idle
CLIENTS = 40
ROUNDS = 2  # each client: list, create, patch, feed, per round
_tally = threading.Lock()


def _with(url: str, *, user: str | None = None, database: str) -> str:
    parsed = urlparse(url)
    netloc = parsed.netloc if user is None else f"{user}@{parsed.hostname}:{parsed.port or 5432}"
    return urlunparse(parsed._replace(netloc=netloc, path=f"/{database}"))


@pytest.fixture
def limited_server(request, tmp_path, postgres_only):
    """`manage.py serve` (in-process worker and scheduler included) on a fresh database, as a
    role with CONNECTION LIMIT ROLE_LIMIT; yields the base URL, a count of the role's
    connections, and the processes."""
    import psycopg

    admin_url = _with(require_service(request, "PostgreSQL", POSTGRES_URL), database="postgres")
    suffix = uuid.uuid4().hex[:10]
    role, database = f"automl_conn_{suffix}", f"automl_conn_{suffix}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {ROLE_LIMIT}')
        admin.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')

    def connections() -> int:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                                 [role]).fetchone()[0]

    env = clean_env(
        DJANGO_SETTINGS_MODULE="config.settings.local", DEBUG="false", LOG_LEVEL="WARNING",
        DATA_DIR=str(tmp_path / "data"), TASK_DEVICE="cpu",
        DATABASE_URL=_with(POSTGRES_URL, user=role, database=database),
        DATABASE_POOL_MAX_SIZE=str(POOL_MAX), DATABASE_POOL_MIN_SIZE=str(POOL_MIN),
        DATABASE_POOL_MAX_IDLE_S="1",
        # The policy follower borrows a connection every second beside the other background
        # jobs; a pool keeps what is used at once within each idle period, so with it on the
        # count would measure the background's overlap, not what the requests left behind.
        EVENTLOG_POLICIES="false",
        ANON_THROTTLE_RATE="100000/min", API_THROTTLE_RATE="100000/min")
    processes = Processes(tmp_path)
    try:
        manage(env, "migrate", "--noinput", "-v0")
        port = free_port()
        processes.start("serve", [*MANAGE, "serve", "--port", str(port)], env)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(Client(base), processes)
        yield base, connections, processes
    finally:
        processes.stop_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def _client_rounds(base: str, token: str, start: threading.Barrier, statuses: Counter,
                   failures: list[str]) -> None:
    api = Client(base, token)
    start.wait()
    for n in range(ROUNDS):
        calls = [("GET", "/api/v1/projects/", None)]
        code, body = api.call("POST", "/api/v1/projects/", {"name": f"p-{uuid.uuid4().hex[:8]}"})
        calls_done = [("POST", "/api/v1/projects/", code, body)]
        if code == 201:
            calls.append(("PATCH", f"/api/v1/projects/{body['id']}/", {"description": f"{n}"}))
        calls.append(("GET", "/api/v1/events/?limit=50", None))
        for method, path, payload in calls:
            code, body = api.call(method, path, payload)
            calls_done.append((method, path, code, body))
        with _tally:
            for method, path, code, body in calls_done:
                statuses[code] += 1
                if code >= 500:
                    failures.append(f"{method} {path} -> {code}: {str(body)[:200]}")


def test_a_burst_stays_within_the_pool_and_leaves_only_idle_connections(limited_server):
    base, connections, processes = limited_server
    signup = Client(base).ok("POST", "/api/v1/auth/signup/", {
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "password": "correct horse battery staple", "tenant": "Burst"}, status=201)

    peak, sampling = [0], threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], connections())
            time.sleep(0.05)  # the sampling period: lets time pass between two looks

    statuses: Counter = Counter()
    failures: list[str] = []
    start = threading.Barrier(CLIENTS)
    clients = [threading.Thread(target=_client_rounds,
                                args=(base, signup["token"], start, statuses, failures))
               for _ in range(CLIENTS)]
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=120)
    finally:
        sampling.set()
        sampler.join()

    assert not failures, f"{len(failures)} answers were 5xx ({dict(statuses)}): {failures[:5]}"
    assert sum(statuses.values()) >= CLIENTS * ROUNDS * 3, dict(statuses)
    assert peak[0] <= POOL_MAX, f"{peak[0]} connections at the peak; the pool allows {POOL_MAX}"
    # the pool closes connections idle past DATABASE_POOL_MAX_IDLE_S, down to its idle size
    wait_for(lambda: connections() <= POOL_MIN, timeout=30, processes=processes,
             what=f"the role's connections to fall back to {POOL_MIN} "
                  f"(they were {connections()})")
