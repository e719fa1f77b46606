"""The platform under mixed load on PostgreSQL: reads, writes and predictions from 50 clients.

Issue 16, "Done when": "a load test on PostgreSQL (50 concurrent clients for 60 s across reads,
writes and predictions, on the production shape of `manage.py serve` plus workers) shows 0 5xx,
p50/p95/p99 per route, and connections back to their idle count afterwards".

The production shape, on this machine's services: a fresh PostgreSQL database, Redis as the
channel layer and the serving transport, RabbitMQ as the dramatiq broker (as
config.settings.production and compose use; in a vhost of its own when rabbitmqctl is at hand,
so no other user of the broker meets these queues), `config.settings.production`, and four
processes: `manage.py serve` (the API, websockets and the prediction gateway, one uvicorn
process), a dramatiq worker on the `serving` queue (compose's worker-serving: it runs the
service instance), one on `cpu` and `gpu` (worker-cpu), and `manage.py run_scheduler`. Each
process has its own connection pool (DATABASE_POOL_*; the bench shortens
DATABASE_POOL_MAX_IDLE_S, --max-idle, so that "back to idle" is seen within the run: the pool
closes one idle connection per that period).

Setup: --tenants tenants signed up through the API, funded, each client with a project of its
own; one published prediction service (registry small_cnn at 64x64, random weights, exported as
training exports it), called with its service key. Then every client loops for --duration
seconds over a fixed mix (weights in ROUTES): the project list, the task list and the event
feed (reads), project creation and a PATCH of its own project (writes, each an event append),
and a prediction. Clients use keep-alive `http.client` connections, in this process.

Anchors, same run, same clients and server:
  - a trivial request: an unknown API path, answered 404 by the same server through Django's
    whole chain, no database: the server's ceiling for a request that does nothing;
  - raw psycopg: the project list's query on one connection, back to back.
Database connections: pg_stat_activity for the bench's database, sampled every 0.2 s: before the
load (idle), its peak, at its end, and once back at the idle count (or after --settle seconds);
and each process's own connections at the peak (its sockets to PostgreSQL).
No assertions: figures to read; the exit status is 1 when any answer was a 5xx.

Usage: .venv/bin/python bench/load.py [--duration 60] [--clients 50] [--tenants 10]
       [--max-idle 5] [--settle 90] [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]
       [--redis-url redis://127.0.0.1:6379/11] [--amqp-url amqp://guest:guest@127.0.0.1:5672/]
"""

import argparse
import base64
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait  # noqa: E402

HOST = "127.0.0.1"
# route name -> weight in the mix
ROUTES = {"GET projects": 20, "GET tasks": 15, "GET events": 15, "POST projects": 10,
          "PATCH project": 15, "POST predict": 25}
MODEL, SIZE = "small_cnn", 64


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


# --- the deployment ----------------------------------------------------------------------------


class Broker:
    """RabbitMQ for dramatiq: a vhost of the bench's own when rabbitmqctl is usable here."""

    def __init__(self, url: str) -> None:
        self.url, self.vhost = url, None
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            print(f"note: rabbitmqctl not found; the bench shares {url}'s vhost", flush=True)
            return
        vhost = f"automl-bench-load-{uuid.uuid4().hex[:8]}"
        user = urlparse(url).username or "guest"
        done = subprocess.run([ctl, "add_vhost", vhost], capture_output=True, timeout=60,
                              check=False)
        if done.returncode != 0:
            print(f"note: no vhost of its own ({done.stderr.decode()[-200:]}); the bench shares "
                  f"{url}'s", flush=True)
            return
        subprocess.run([ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                       capture_output=True, timeout=60, check=True)
        self.vhost = vhost
        self.url = urlunparse(urlparse(url)._replace(path="/" + quote(vhost, safe="")))

    def drop(self) -> None:
        if self.vhost:
            subprocess.run([shutil.which("rabbitmqctl"), "delete_vhost", self.vhost],
                           capture_output=True, timeout=60, check=False)


@dataclass
class Deployment:
    env: dict[str, str]
    port: int
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n"
                                   + (self.log_dir / f"{name}.log").read_text()[-3000:])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def tails(self) -> str:
        return "\n".join(f"----- {name}\n{(self.log_dir / f'{name}.log').read_text()[-2500:]}"
                         for name in self.processes)


def environment(data_dir: str, database_url: str, redis_url: str, amqp_url: str, port: int,
                max_idle: float) -> dict[str, str]:
    """config.settings.production's requirements, met for a local run over plain HTTP."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_", "TASK_", "BILLING_", "SERVING_", "AWS_", "S3_"))
           and key not in {"REDIS_URL", "DRAMATIQ_BROKER_URL", "INPROCESS_WORKER", "DEBUG"}}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.production", "DATA_DIR": data_dir,
        "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": f"{HOST},localhost",
        "PUBLIC_URL": f"http://{HOST}:{port}", "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false", "SECURE_HSTS_SECONDS": "0",
        "WHITENOISE_USE_FINDERS": "true",
        "LOG_LEVEL": "ERROR",  # not a line per 404 of the trivial anchor; 5xx are still logged
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DRAMATIQ_BROKER_URL": amqp_url,
        "DATABASE_POOL_MAX_IDLE_S": str(max_idle), "TASK_DEVICE": "cpu",
        # the bench measures the server and its database, not the per-token throttle
        "API_THROTTLE_RATE": "10000000/min", "ANON_THROTTLE_RATE": "10000000/min",
        "OMP_WAIT_POLICY": "PASSIVE",  # as compose's worker-serving
    })
    return env


# --- connections -------------------------------------------------------------------------------


class ConnectionWatch:
    """pg_stat_activity for one database, sampled in a thread; each process's own sockets to
    PostgreSQL at the sample with the most connections."""

    def __init__(self, admin_url: str, database: str, processes: dict[str, subprocess.Popen],
                 pg_port: int) -> None:
        import psycopg

        self.connection = psycopg.connect(admin_url, autocommit=True)
        self.database, self.processes, self.pg_port = database, processes, pg_port
        self.samples: list[tuple[float, int]] = []
        self.peak, self.peak_by_process = 0, {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self) -> int:
        return self.connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid()", [self.database]).fetchone()[0]

    def by_process(self) -> dict[str, int]:
        import psutil

        counts = {}
        for name, process in self.processes.items():
            try:
                family = [psutil.Process(process.pid)]
                family += family[0].children(recursive=True)
                counts[name] = sum(1 for member in family
                                   for c in member.net_connections(kind="tcp")
                                   if c.raddr and c.raddr.port == self.pg_port
                                   and c.status == "ESTABLISHED")
            except psutil.Error:
                counts[name] = -1
        return counts

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.count()
            self.samples.append((time.monotonic(), now))
            if now > self.peak:
                self.peak, self.peak_by_process = now, self.by_process()
            self._stop.wait(0.2)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        self.stop()
        self.connection.close()


# --- clients -----------------------------------------------------------------------------------


@dataclass
class Result:
    route: str
    status: int
    ms: float


class Client:
    """One keep-alive HTTP connection (http.client: light on this machine's shared CPU)."""

    def __init__(self, port: int, token: str, service_key: str, service_id: str,
                 project_id: str, bodies: list[bytes], seed: int) -> None:
        self.port, self.project_id, self.service_id = port, project_id, service_id
        self.connection = http.client.HTTPConnection(HOST, port, timeout=120)
        self.token_headers = {"Authorization": f"Bearer {token}",
                              "Content-Type": "application/json"}
        self.key_headers = {"Authorization": f"Bearer {service_key}",
                            "Content-Type": "application/json"}
        self.bodies, self.random = bodies, random.Random(seed)
        self.results: list[Result] = []

    def connect(self) -> None:
        """A fresh connection: uvicorn closes keep-alive connections idle for 5 s (between
        phases), which http.client would only notice on its next request."""
        self.connection.close()
        self.connection.connect()

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        try:
            self.connection.request(method, path, body, headers)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (http.client.HTTPException, OSError) as error:
            print(f"client: {method} {path}: {error!r}", file=sys.stderr)
            self.connection.close()
            return 0  # counted with the 5xx: the server failed to answer

    def call(self, route: str) -> None:
        n = self.random.randrange(1 << 30)
        if route == "GET projects":
            args = ("GET", "/api/v1/projects/", None, self.token_headers)
        elif route == "GET tasks":
            args = ("GET", "/api/v1/tasks/", None, self.token_headers)
        elif route == "GET events":
            args = ("GET", "/api/v1/events/?limit=50", None, self.token_headers)
        elif route == "POST projects":
            args = ("POST", "/api/v1/projects/", json.dumps({"name": f"load {n}"}).encode(),
                    self.token_headers)
        elif route == "PATCH project":
            args = ("PATCH", f"/api/v1/projects/{self.project_id}/",
                    json.dumps({"description": f"revision {n}"}).encode(), self.token_headers)
        elif route == "POST predict":
            args = ("POST", f"/api/v1/services/{self.service_id}/predict/",
                    self.bodies[n % len(self.bodies)], self.key_headers)
        else:  # the anchor: nothing behind it
            args = ("GET", "/api/v1/no-such-route/", None, self.token_headers)
        started = time.perf_counter()
        status = self.send(*args)
        self.results.append(Result(route, status, (time.perf_counter() - started) * 1000))

    def run(self, until: float, routes: list[str], weights: list[int]) -> None:
        while time.monotonic() < until:
            self.call(self.random.choices(routes, weights)[0])


def drive(clients: list[Client], seconds: float, mix: dict[str, int]) -> tuple[list[Result], float]:
    """Every client loops over the mix for `seconds`; all results and the wall time."""
    for client in clients:
        client.results = []
    start = threading.Barrier(len(clients) + 1)
    routes, weights = list(mix), list(mix.values())

    def loop(client: Client) -> None:
        client.connect()
        start.wait()
        client.run(time.monotonic() + seconds, routes, weights)

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return [r for c in clients for r in c.results], time.perf_counter() - began


def raw_query_rate(database_url: str, tenant_id: str, seconds: float) -> float:
    """The project list's query with psycopg on one connection, back to back: queries/s."""
    import psycopg

    sql = ("SELECT id, name, description, created_at, updated_at, archived_at, created_by, "
           "version FROM accounts_project WHERE tenant_id = %s AND archived_at IS NULL "
           "ORDER BY created_at DESC, id DESC LIMIT 51")
    with psycopg.connect(database_url, autocommit=True) as connection:
        done, until = 0, time.monotonic() + seconds
        started = time.perf_counter()
        while time.monotonic() < until:
            connection.execute(sql, [tenant_id]).fetchall()
            done += 1
        return done / (time.perf_counter() - started)


# --- setup through the API ---------------------------------------------------------------------


def api_call(port: int, method: str, path: str, body: Any = None, token: str | None = None,
             status: int = 200) -> Any:
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, None if body is None else json.dumps(body).encode(),
                       headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status != status:
        raise RuntimeError(f"{method} {path} answered {response.status}: {payload[:500]!r}")
    return json.loads(payload) if payload else None


def healthy(port: int) -> bool:
    try:
        api_call(port, "GET", "/api/v1/health/")
        return True
    except (OSError, RuntimeError, http.client.HTTPException):
        return False


def publish_service(port: int, token: str, tenant_id: str, project_id: str,
                    data_dir: str) -> dict:
    """A small classification model stored as training leaves one, published and running."""
    from bench.serving import export, stored_model
    from billing.models import ComputeSpec

    spec = ComputeSpec.objects.create(name=f"bench-load-{uuid.uuid4().hex[:6]}", kind="cpu",
                                      cpu_cores=1, memory_gib=1, price_per_hour=1)
    artifact = export(MODEL, SIZE, "auto", Path(data_dir))
    model_id = stored_model(tenant_id, project_id, artifact, MODEL, SIZE)
    service = api_call(port, "POST", "/api/v1/services/", {
        "model": model_id, "name": "load", "spec": str(spec.id)}, token, status=201)

    def running() -> bool:
        state = api_call(port, "GET", f"/api/v1/services/{service['id']}/", token=token)
        if state["state"] == "failed":
            raise RuntimeError(f"the service failed: {state.get('failure')}")
        return state["state"] == "running"

    wait(running, 180, "the service to run", every=0.5)
    return service


# --- report ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(results: list[Result], wall: float, trivial: list[Result], trivial_wall: float,
           raw_rate: float, watch: ConnectionWatch, before: int, at_end: int,
           settled: tuple[int, float], args: argparse.Namespace) -> int:
    by_route: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_route[result.route].append(result)
    trivial_rate = len(trivial) / trivial_wall
    trivial_p50 = pct([r.ms for r in trivial], 50)
    print(f"\n{args.clients} clients for {wall:.1f} s on PostgreSQL, production shape "
          "(serve + worker-serving + worker-cpu + scheduler, Redis, RabbitMQ)")
    print(f"{'route':<15} {'count':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'4xx':>5} {'5xx':>5}")
    total_5xx = 0
    for route in ROUTES:
        rows = by_route.get(route, [])
        if not rows:
            continue
        ms = [r.ms for r in rows]
        bad = sum(1 for r in rows if r.status >= 500 or r.status == 0)
        total_5xx += bad
        print(f"{route:<15} {len(rows):>6} {len(rows) / wall:>7.1f} {pct(ms, 50):>8.1f} "
              f"{pct(ms, 95):>8.1f} {pct(ms, 99):>8.1f} "
              f"{sum(1 for r in rows if 400 <= r.status < 500):>5} {bad:>5}")
    all_ms = [r.ms for r in results]
    rate = len(results) / wall
    print(f"{'all':<15} {len(results):>6} {rate:>7.1f} {pct(all_ms, 50):>8.1f} "
          f"{pct(all_ms, 95):>8.1f} {pct(all_ms, 99):>8.1f} "
          f"{sum(1 for r in results if 400 <= r.status < 500):>5} {total_5xx:>5}")
    statuses = defaultdict(int)
    for result in results:
        statuses[result.status] += 1
    print(f"statuses: {dict(sorted(statuses.items()))}; total 5xx (and unanswered): {total_5xx}")
    print(f"\nanchor, trivial request (404 through Django's chain, no database), same clients: "
          f"{trivial_rate:.1f} req/s, p50 {trivial_p50:.1f} ms")
    print(f"  the mix: {rate / trivial_rate:.2f} x its throughput; p50 "
          f"{pct(all_ms, 50) / trivial_p50:.1f} x its p50")
    print(f"anchor, raw psycopg (the project list's query, one connection): {raw_rate:.0f} "
          f"queries/s; the mix's {rate:.1f} req/s is {rate / raw_rate:.3f} x")
    print(f"\ndatabase connections (pg_stat_activity, the bench's database): before {before}, "
          f"peak {watch.peak}, at the end of the load {at_end}, "
          f"{settled[0]} after {settled[1]:.0f} s (pool max idle {args.max_idle:g} s)")
    print(f"  each process at the peak: {watch.peak_by_process} "
          "(sockets to PostgreSQL; dramatiq workers with their forked processes)")
    return total_5xx


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    from core.services import POSTGRES_URL, RABBITMQ_URL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--anchor-seconds", type=float, default=8.0)
    parser.add_argument("--max-idle", type=float, default=5.0,
                        help="DATABASE_POOL_MAX_IDLE_S of every process")
    parser.add_argument("--settle", type=float, default=90.0,
                        help="the longest wait for connections back at their idle count")
    parser.add_argument("--postgres-url", default=_with_database(POSTGRES_URL, "postgres"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--amqp-url", default=RABBITMQ_URL)
    args = parser.parse_args()

    import psycopg

    base = Path(os.environ.get("DATA_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="bench-load-", dir=base)
    database = f"automl_bench_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    broker = Broker(args.amqp_url)
    port = free_port()
    database_url = _with_database(args.postgres_url, database)
    env = environment(data_dir, database_url, args.redis_url, broker.url, port, args.max_idle)
    deployment = Deployment(env, port, Path(data_dir))
    watch = None
    failed = 0
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                       env=env, check=True, timeout=600)
        # this process: the ORM for the model row and the funds, with no pool of its own that
        # would count among the deployment's connections
        os.environ.update(env, DATABASE_POOL_MAX_SIZE="0", DATABASE_CONN_MAX_AGE="0")
        import django

        django.setup()
        from billing import wallet

        worker = [sys.executable, "-m", "dramatiq", "config.worker", "--processes", "1"]
        deployment.start("serve", [sys.executable, "manage.py", "serve", "--port", str(port)])
        deployment.start("worker-serving", [*worker, "--threads", "2", "--queues", "serving"])
        deployment.start("worker-cpu", [*worker, "--threads", "4", "--queues", "cpu", "gpu"])
        deployment.start("scheduler", [sys.executable, "manage.py", "run_scheduler"])

        def up() -> bool:
            deployment.check_alive()
            return healthy(port)

        wait(up, 180, "the server to answer", every=0.5)
        tenants = []
        for n in range(args.tenants):
            account = api_call(port, "POST", "/api/v1/auth/signup/", {
                "email": f"load-{n}-{uuid.uuid4().hex[:6]}@example.com",
                "password": "a long bench password", "tenant": f"Load {n}"}, status=201)
            wallet.adjust(account["tenant"]["id"], 10_000_000, "bench funds", "staff:bench")
            tenants.append(account)
        owner = tenants[0]
        first = api_call(port, "POST", "/api/v1/projects/", {"name": "models"}, owner["token"],
                         status=201)
        service = publish_service(port, owner["token"], owner["tenant"]["id"], first["id"],
                                  data_dir)
        from bench.serving import jpegs

        bodies = [json.dumps({"image": base64.b64encode(image).decode(), "top_k": 3}).encode()
                  for image in jpegs(16, SIZE)]
        clients = []
        for n in range(args.clients):
            account = tenants[n % len(tenants)]
            project = api_call(port, "POST", "/api/v1/projects/", {"name": f"client {n}"},
                               account["token"], status=201)
            clients.append(Client(port, account["token"], service["key"], service["id"],
                                  project["id"], bodies, seed=n))
        django.db.connections.close_all()

        watch = ConnectionWatch(args.postgres_url, database, deployment.processes,
                                urlparse(args.postgres_url).port or 5432)
        print(f"warm-up {args.warmup:g} s ...", flush=True)
        drive(clients, args.warmup, ROUTES)
        trivial, trivial_wall = drive(clients, args.anchor_seconds, {"trivial": 1})
        raw_rate = raw_query_rate(database_url, owner["tenant"]["id"], 3.0)
        # idle again before the load: the pools back at their idle size
        before = wait_idle(watch, args.settle)[0]
        watch.start()
        print(f"load: {args.clients} clients for {args.duration:g} s ...", flush=True)
        results, wall = drive(clients, args.duration, ROUTES)
        watch.stop()
        at_end = watch.count()
        deployment.check_alive()
        settled = wait_idle(watch, args.settle, target=before)
        failed = report(results, wall, trivial, trivial_wall, raw_rate, watch, before, at_end,
                        settled, args)
        api_call(port, "POST", f"/api/v1/services/{service['id']}/stop/", token=owner["token"],
                 status=202)
    except BaseException:
        print(deployment.tails(), file=sys.stderr)
        raise
    finally:
        if watch is not None:
            watch.close()
        deployment.stop()
        broker.drop()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(args.postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(1 if failed else 0)


def wait_idle(watch: ConnectionWatch, settle: float, target: int | None = None
              ) -> tuple[int, float]:
    """Wait until the count reaches `target` (or, without one, stops falling for a few
    samples), at most `settle` seconds: (the count, seconds waited)."""
    started = time.monotonic()
    history = [watch.count()]
    while time.monotonic() - started < settle:
        if target is not None and history[-1] <= target:
            break
        if target is None and len(history) >= 15 and len(set(history[-15:])) == 1:
            break
        time.sleep(0.5)
        history.append(watch.count())
    return history[-1], time.monotonic() - started


if __name__ == "__main__":
    main()
