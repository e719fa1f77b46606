"""Websocket fan-out: commit -> delivery latency to many sockets of one tenant over Redis.

What it measures: the time from an event's commit in PostgreSQL to its receipt by each of N
websocket clients (default 1,000) of one tenant, served by 2 ASGI processes that share the
`RedisPubSubChannelLayer`. Goal (issue 23): p99 < 100 ms on this machine, 0 lost, 0
duplicated. Timings are printed next to anchors measured in the same run and never asserted:
machines are noisy.

How, end to end, as production runs it:

* a fresh PostgreSQL database (`automl_bench_fanout`, dropped at the end even on failure),
  migrated with `manage.py migrate`; Redis as the channel layer (`REDIS_URL`);
* 2 uvicorn processes on `config.asgi:application` (DEBUG off), each with its own per-tenant
  hub (eventlog/realtime.py): a layer message only wakes the hub, which reads the log once
  and hands the events to that process's sockets in memory;
* one tenant made with `POST /api/v1/auth/signup/`; N sockets opened with its token in the
  `Authorization` header, half to each server, by client process(es) using `websockets`
  (on uvloop) that stamp `time.time()` on each message as it is received;
* a writer in a separate (spawned) process with Django set up on the same database appends
  one `BenchTicked` event per transaction with `eventlog.store.append` at `--rate` events/s
  for `--seconds`, in autocommit as a worker would (for an event type with no inline
  projection that is append's single-statement path). The commit instant is stamped by
  wrapping `eventlog.realtime.notify_committed`, which append calls right after its commit,
  just before the wake-up is published; the time `append` returns is recorded too, and the
  gap between the two (publishing the wake-up) is reported.

Latency of one delivery = receipt time - commit time (one clock: same machine). Reported:
p50/p95/p99/max over all deliveries, deliveries received vs expected (N x events), missing
ones, duplicates, and non-event messages (a `resync` would show up there).

Diagnostics printed with each phase: the spread between the first and the last socket to get
an event; CPU share of each server and client process; and how many events were not yet
readable when `append` returned. Readers of the log stop below the oldest transaction still
running anywhere in the PostgreSQL cluster (eventlog.guards, the gap-free horizon), so a hub
woken then reads nothing and must look again later (eventlog.realtime retries, backing off).
Such events are counted (a lower bound: the horizon may move between the hub's read and the
writer's check) and their latencies shown apart.

Anchors, in the same run and at the same rate: (a) raw Redis `PUBLISH` from one process to a
subscriber in another (the floor any Redis-layer design pays), (b) the same pipeline with a
single socket. Figures also go to bench/results/fanout.json.

Run: `.venv/bin/python bench/fanout.py [--subscribers 200] [--rate 20] [--seconds 10]`
(`--client-processes`, `--servers`, `--anchor-seconds`, `--deflate`: see `--help`). Servers run
without permessage-deflate, as `manage.py serve` does; `--deflate` measures with it.
One client process is the default: it used ~12-18 % of a core for 200 sockets at 20 events/s
here, and a second one (on this 2-CPU machine) gave no consistent gain.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, free_port  # noqa: E402
from core.services import POSTGRES_URL, REDIS_URL  # noqa: E402
from eventlog.schema import event  # noqa: E402

DB_NAME = urlparse(POSTGRES_URL).path.lstrip("/") + "_bench_fanout"  # runs apart never collide
RESULTS = ROOT / "bench" / "results" / "fanout.json"
GOAL_P99_MS = 100.0  # issue 23: 1,000 sockets of one tenant at 20 events/s
WARMUP_EVENTS = 10
CONNECT_CONCURRENCY = 50
CLOSE_BATCH = 20  # sockets closed at a time: hundreds leaving at once strain redis-py's pool


@event("BenchTicked")
@dataclass(frozen=True)
class BenchTicked:
    """One tick of the fan-out benchmark's writer."""

    n: int


# ---------------------------------------------------------------------------------- figures


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summary_ms(latencies_s: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/min in milliseconds, and the sample count."""
    values = sorted(v * 1000 for v in latencies_s)
    return {"count": len(values), "min": values[0] if values else float("nan"),
            "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": values[-1] if values else float("nan")}


def fmt(stats: dict[str, float]) -> str:
    return (f"p50 {stats['p50']:.1f} ms  p95 {stats['p95']:.1f}  p99 {stats['p99']:.1f}  "
            f"max {stats['max']:.1f}  (n={stats['count']})")


# ---------------------------------------------------------------------------- writer process


def writer_main(conn: Any, env: dict[str, str]) -> None:
    """Spawned process: Django on the bench database, appending events on command."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from eventlog import realtime
    from eventlog.guards import POSITION_SHIFT
    from eventlog.store import Stream, append

    # The commit instant: `append` calls `realtime.notify_committed` right after its commit
    # (directly on its single-statement autocommit path, through on_commit otherwise), so
    # stamp the time there, just before the wake-up is published. Nothing else changes.
    publish = realtime.notify_committed
    stamps: list[float] = []

    def stamped_notify(tenant_id: Any) -> None:
        stamps.append(time.time())
        publish(tenant_id)

    realtime.notify_committed = stamped_notify
    horizon_sql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    conn.send("ready")
    while True:
        command = conn.recv()
        if command[0] == "stop":
            connection.close()
            return
        _, tenant_id, stream_id, rate, count = command
        stream = Stream.of(tenant_id, "bench", stream_id)
        rows: list[tuple[int, float, float, bool]] = []
        start = time.perf_counter() + 0.02
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            stamps.clear()
            recorded = append(stream, n, [BenchTicked(n=n)])  # autocommit, as a worker calls it
            returned = time.time()
            # Diagnostic: can a reader see this event yet? Readers stop below the oldest
            # transaction still running in the cluster (eventlog.guards), so a hub woken
            # now reads nothing and must look again later.
            with connection.cursor() as cursor:
                cursor.execute(horizon_sql)
                visible = recorded[0].position < cursor.fetchone()[0] << POSITION_SHIFT
            rows.append((recorded[0].position, stamps[0], returned, visible))
        conn.send(rows)


class Writer:
    """The writer process, driven over a pipe."""

    def __init__(self, ctx: Any, env: dict[str, str]):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=writer_main, args=(child, env), name="fanout-writer")
        self.process.start()

    def wait_ready(self, timeout: float = 60) -> None:
        if not self.conn.poll(timeout):
            raise RuntimeError("the writer process did not start")
        self.conn.recv()

    def run(self, tenant_id: str, rate: float,
            count: int) -> list[tuple[int, float, float, bool]]:
        """Append `count` events to a new stream at `rate`/s.

        Per event: (position, commit time, time append returned, readable by then)."""
        self.conn.send(("run", tenant_id, str(uuid.uuid4()), rate, count))
        if not self.conn.poll(count / rate + 60):
            raise RuntimeError("the writer did not finish")
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("stop",))
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# ---------------------------------------------------------------------------- client process


class _Socket:
    __slots__ = ("dups", "other", "seen", "ws")

    def __init__(self, ws: Any):
        self.ws = ws
        self.seen: dict[int, float] = {}
        self.dups = 0
        self.other: list[str] = []


async def _read(sock: _Socket) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in sock.ws:
            received = time.time()
            message = json.loads(raw)
            if message.get("type") == "event":
                position = message["event"]["position"]
                if position in sock.seen:
                    sock.dups += 1
                else:
                    sock.seen[position] = received
            else:
                sock.other.append(str(message.get("type")))
    except ConnectionClosed:
        pass


async def _client(conn: Any, urls: list[str], token: str) -> None:
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    sockets: list[_Socket | None] = []  # None: did not open (kept, so rows match URLs)
    readers: list[asyncio.Task] = []
    while True:
        command, argument = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            errors: list[str] = []

            async def open_one(url: str, gate: asyncio.Semaphore = gate,
                               errors: list[str] = errors) -> _Socket | None:
                async with gate:
                    try:
                        ws = await connect(url, additional_headers={
                            "Authorization": f"Bearer {token}"}, proxy=None, open_timeout=20)
                    except Exception as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        return None
                    return _Socket(ws)

            started = time.perf_counter()
            opened = await asyncio.gather(*(open_one(url) for url in urls))
            sockets = list(opened)
            readers = [loop.create_task(_read(s)) for s in sockets if s is not None]
            conn.send((len(readers), time.perf_counter() - started, errors[:5]))
        elif command == "collect":
            positions, timeout = argument
            wanted = set(positions)
            deadline = loop.time() + timeout
            live = [s for s in sockets if s is not None]
            while loop.time() < deadline and any(not wanted <= s.seen.keys() for s in live):
                await asyncio.sleep(0.02)
            conn.send([([s.seen.get(p) for p in positions], s.dups, list(s.other))
                       if s is not None else ([None] * len(positions), 0, ["not-opened"])
                       for s in sockets])
            for s in live:
                s.dups = 0
                s.other.clear()
        elif command == "close":
            live = [s for s in sockets if s is not None]
            for start in range(0, len(live), CLOSE_BATCH):
                batch = live[start:start + CLOSE_BATCH]
                await asyncio.gather(*(asyncio.wait_for(s.ws.close(), 5) for s in batch),
                                     return_exceptions=True)
                await asyncio.sleep(0.05)
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            conn.send(len(live))
            return


def raise_open_files_limit() -> int:
    """The soft limit on open files raised to the hard one (a socket is a file); returns it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB."""
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def client_main(conn: Any, urls: list[str], token: str) -> None:
    """Spawned process: websocket clients that stamp each message's receipt time."""
    raise_open_files_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_client(conn, urls, token))
    else:
        uvloop.run(_client(conn, urls, token))


class Clients:
    """N sockets spread over client processes, each driven over a pipe."""

    def __init__(self, ctx: Any, urls: list[str], token: str, processes: int):
        self.parts: list[tuple[Any, Any]] = []
        for k in range(processes):
            share = urls[k::processes]
            if not share:
                continue
            conn, child = ctx.Pipe()
            process = ctx.Process(target=client_main, args=(child, share, token),
                                  name=f"fanout-client-{k}")
            process.start()
            self.parts.append((conn, process))

    def _ask(self, command: str, argument: Any, timeout: float) -> list[Any]:
        for conn, _ in self.parts:
            conn.send((command, argument))
        answers = []
        for conn, process in self.parts:
            if not conn.poll(timeout):
                raise RuntimeError(f"{process.name} did not answer {command!r}")
            answers.append(conn.recv())
        return answers

    def connect(self) -> tuple[int, float, list[str]]:
        answers = self._ask("connect", None, 120)
        return (sum(a[0] for a in answers), max(a[1] for a in answers),
                [e for a in answers for e in a[2]])

    def collect(self, positions: list[int], timeout: float) -> list[tuple[list, int, list]]:
        """Per socket, in URL order: receipt time of each position (None if missing),
        duplicates, other messages."""
        answers = self._ask("collect", (positions, timeout), timeout + 30)
        ordered: dict[int, tuple[list, int, list]] = {}
        for k, answer in enumerate(answers):  # process k holds URLs k, k + P, k + 2P...
            for j, row in enumerate(answer):
                ordered[k + j * len(answers)] = row
        return [ordered[i] for i in sorted(ordered)]

    def pids(self) -> list[int]:
        return [process.pid for _, process in self.parts]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ask("close", None, 60)
        for _, process in self.parts:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


# ------------------------------------------------------------------------- redis anchor


def publisher_main(redis_url: str, channel: str, rate: float, count: int) -> None:
    """Spawned process: PUBLISH `count` messages at `rate`/s, each carrying its send time."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.ping()
    start = time.perf_counter() + 0.05
    for n in range(count):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.publish(channel, json.dumps({"n": n, "t": time.time()}))
    client.close()


def redis_anchor(ctx: Any, rate: float, count: int) -> dict[str, Any]:
    """Raw Redis pub/sub: PUBLISH in one process -> receipt in this one."""
    import redis

    channel = f"bench.fanout.{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    while pubsub.get_message(timeout=1.0) is None:  # the subscribe confirmation
        pass
    publisher = ctx.Process(target=publisher_main, args=(REDIS_URL, channel, rate, count),
                            name="fanout-redis-publisher")
    publisher.start()
    latencies: list[float] = []
    deadline = time.monotonic() + count / rate + 30
    while len(latencies) < count and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            received = time.time()
            latencies.append(received - json.loads(message["data"])["t"])
    publisher.join(10)
    pubsub.close()
    client.close()
    return {**summary_ms(latencies), "expected": count}


# ------------------------------------------------------------------------ infrastructure


def admin_url() -> str:
    return urlunparse(urlparse(POSTGRES_URL)._replace(path="/postgres"))


def bench_db_url() -> str:
    return urlunparse(urlparse(POSTGRES_URL)._replace(path=f"/{DB_NAME}"))


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(method: str, url: str, body: dict | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with _HTTP.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Server:
    """One uvicorn process serving config.asgi:application, in its own process group."""

    def __init__(self, port: int, env: dict[str, str], log_dir: Path, *, deflate: bool = True):
        self.port = port
        self.log_path = log_dir / f"uvicorn-{port}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--lifespan", "off",
             "--no-access-log", "--ws-per-message-deflate", str(deflate).lower()],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server on :{self.port} exited:\n{self.tail()}")
            with contextlib.suppress(OSError):
                status, body = http_json("GET", f"{self.base}/api/v1/health/")
                if status == 200:
                    return body
            time.sleep(0.1)
        raise RuntimeError(f"server on :{self.port} never answered /api/v1/health/\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()


# --------------------------------------------------------------------------------- phases


@dataclass
class Phase:
    """One measured stretch: sockets connected, events written, receipts collected."""

    name: str
    latency: dict[str, float]
    expected: int
    delivered: int
    missing: int
    duplicates: int
    other_messages: dict[str, int]
    sockets: int
    events: int
    extra: dict[str, Any]


def fan_out_phase(ctx: Any, name: str, urls: list[str], token: str, tenant_id: str,
                  writer: Writer, rate: float, seconds: float, client_processes: int,
                  watch_pids: dict[str, int]) -> Phase:
    """Connect the sockets, warm up until every one receives, then measure one stretch."""
    rss_before = {k: rss_mib(pid) for k, pid in watch_pids.items()}
    clients = Clients(ctx, urls, token, client_processes)
    try:
        opened, connect_s, errors = clients.connect()
        if opened < len(urls):
            print(f"  ! {len(urls) - opened} of {len(urls)} sockets failed to open: {errors}")
        # Warm-up: hubs, thread pools, connections. Sockets are accepted before they join
        # their hub, so wait until every socket has received the last warm-up event.
        warm = writer.run(tenant_id, rate, WARMUP_EVENTS)
        warm_rows = clients.collect([warm[-1][0]], timeout=10)
        not_warm = sum(1 for times, _, _ in warm_rows if times[0] is None)
        if not_warm:
            print(f"  ! {not_warm} sockets missed the last warm-up event")

        rss_connected = {k: rss_mib(pid) for k, pid in watch_pids.items()}
        count = max(1, round(rate * seconds))
        cpu_before = {k: cpu_seconds(pid) for k, pid in watch_pids.items()}
        for k, pid in enumerate(clients.pids()):
            cpu_before[f"client-{k}"] = cpu_seconds(pid)
        wall_before = time.monotonic()
        written = writer.run(tenant_id, rate, count)
        positions = [row[0] for row in written]
        rows = clients.collect(positions, timeout=5)
        wall = time.monotonic() - wall_before
        cpu_share, server_cpu_s = {}, 0.0
        for k, pid in [*watch_pids.items(),
                       *((f"client-{i}", p) for i, p in enumerate(clients.pids()))]:
            after, before = cpu_seconds(pid), cpu_before.get(k)
            if after is not None and before is not None:
                cpu_share[k] = round((after - before) / wall * 100, 1)
                server_cpu_s += (after - before) if k in watch_pids else 0.0
    finally:
        clients.close()

    commit = {row[0]: row[1] for row in written}
    latencies: list[float] = []
    readable_latencies: list[float] = []
    hidden = {row[0] for row in written if not row[3]}
    per_server: dict[str, list[float]] = {}
    missing = duplicates = 0
    others: dict[str, int] = {}
    for index, (times, dups, other) in enumerate(rows):
        server = urlparse(urls[index]).port
        duplicates += dups
        for kind in other:
            others[kind] = others.get(kind, 0) + 1
        for position, received in zip(positions, times, strict=True):
            if received is None:
                missing += 1
                continue
            latency = received - commit[position]
            latencies.append(latency)
            if position not in hidden:
                readable_latencies.append(latency)
            per_server.setdefault(str(server), []).append(latency)
    first_last: dict[int, tuple[float, float]] = {}  # per event: first and last receipt
    for i, position in enumerate(positions):
        got = [times[i] - commit[position] for times, _, _ in rows if times[i] is not None]
        if got:
            first_last[position] = (min(got), max(got))
    notify = [returned - committed for _, committed, returned, _ in written]
    extra = {
        "connect_s": round(connect_s, 2),
        "client_processes": client_processes,
        "per_server": {port: summary_ms(v) for port, v in per_server.items()},
        "first_socket_per_event": summary_ms([a for a, _ in first_last.values()]),
        "last_socket_per_event": summary_ms([b for _, b in first_last.values()]),
        "writer_publish_after_commit": summary_ms(notify),
        "cpu_percent_during_measure": cpu_share,
        # CPU the servers spent per message delivered: what a socket costs, whatever the load.
        "server_cpu_us_per_delivery": round(
            server_cpu_s * 1e6 / max(1, sum(t is not None for times, _, _ in rows
                                            for t in times)), 1),
        # Each server holds len(urls) / servers sockets (round-robin).
        "rss_mib_before_and_connected": {k: (round(rss_before[k], 1), round(v, 1))
                                         for k, v in rss_connected.items()},
        "kib_per_socket": {k: round((v - rss_before[k]) * 1024 / (len(urls) / len(watch_pids)),
                                    1) for k, v in rss_connected.items()},
        "events_unreadable_after_publish": len(hidden),
        "deliveries_of_readable_events": summary_ms(readable_latencies),
        "first_socket_readable_events": summary_ms(
            [v[0] for p, v in first_last.items() if p not in hidden]),
        "first_socket_unreadable_events": summary_ms(
            [v[0] for p, v in first_last.items() if p in hidden]),
        "per_event_ms": [{"position": p, "readable": p not in hidden,
                          "first": round(a * 1000, 2), "last": round(b * 1000, 2)}
                         for p, (a, b) in first_last.items()],
    }
    return Phase(name=name, latency=summary_ms(latencies), expected=len(rows) * len(positions),
                 delivered=len(latencies), missing=missing, duplicates=duplicates,
                 other_messages=others, sockets=len(rows), events=len(positions), extra=extra)


def client_urls(servers: list[Server], count: int) -> list[str]:
    """`count` socket URLs, round-robin over the servers (so half to each of two)."""
    return [f"ws://127.0.0.1:{servers[i % len(servers)].port}/ws/v1/events/"
            for i in range(count)]


def print_phase(phase: Phase) -> None:
    extra = phase.extra
    print(f"  {phase.name}: {fmt(phase.latency)}")
    if len(extra["per_server"]) > 1:
        for port, stats in extra["per_server"].items():
            print(f"    via :{port}: {fmt(stats)}")
        print(f"    per event, first socket: {fmt(extra['first_socket_per_event'])}")
        print(f"    per event, last socket:  {fmt(extra['last_socket_per_event'])}")
    print(f"    writer, commit -> append returned (publishing the wake-up): "
          f"{fmt(extra['writer_publish_after_commit'])}")
    unreadable = extra["events_unreadable_after_publish"]
    print(f"    events not yet readable when append returned (an older transaction in the "
          f"cluster held the gap-free horizon): {unreadable}/{phase.events}")
    if unreadable:
        print(f"      all deliveries of readable events: "
              f"{fmt(extra['deliveries_of_readable_events'])}")
        print(f"      first receipt, readable events:   "
              f"{fmt(extra['first_socket_readable_events'])}")
        print(f"      first receipt, unreadable events: "
              f"{fmt(extra['first_socket_unreadable_events'])}")
    print(f"    CPU % during the measure: {extra['cpu_percent_during_measure']}; "
          f"{phase.sockets} socket(s) connected in {extra['connect_s']} s")
    print(f"    server CPU per delivered message: {extra['server_cpu_us_per_delivery']} us")
    print(f"    server memory (RSS MiB before connecting, connected): "
          f"{extra['rss_mib_before_and_connected']}; per socket (KiB): "
          f"{extra['kib_per_socket']}")
    print(f"    delivered {phase.delivered}/{phase.expected}, missing {phase.missing}, "
          f"duplicates {phase.duplicates}, other messages {phase.other_messages or 'none'}")


# ----------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the main phase")
    parser.add_argument("--anchor-seconds", type=float, default=5.0,
                        help="length of the 1-socket anchor phase")
    parser.add_argument("--servers", type=int, default=2, help="ASGI processes")
    parser.add_argument("--client-processes", type=int, default=1,
                        help="websocket client processes for the main phase")
    parser.add_argument("--deflate", action="store_true",
                        help="serve with permessage-deflate (manage.py serve turns it off)")
    args = parser.parse_args()

    started = time.monotonic()
    open_files = raise_open_files_limit()  # servers and clients inherit it
    if open_files < args.subscribers + 100:
        print(f"  ! open files limit {open_files} is below {args.subscribers} sockets")
    ctx = mp.get_context("spawn")
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    env = {
        **os.environ,
        "DATABASE_URL": bench_db_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "REDIS_URL": REDIS_URL,
        "DATA_DIR": str(workdir / "data"),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("DRAMATIQ_BROKER_URL", None)
    servers: list[Server] = []
    writer: Writer | None = None
    try:
        recreate_database()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=env, check=True)
        writer = Writer(ctx, {k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE",
                                                   "REDIS_URL", "DATA_DIR", "DEBUG",
                                                   "LOG_LEVEL")})
        servers = [Server(free_port(), env, workdir, deflate=args.deflate)
                   for _ in range(args.servers)]
        for server in servers:
            health = server.wait_healthy()
            if health.get("status") != "ok":
                print(f"  ! server :{server.port} health: {health}")
        status, body = http_json("POST", f"{servers[0].base}/api/v1/auth/signup/", {
            "email": "fanout@bench.example", "password": "bench-fanout-Pa55",
            "tenant": "fan-out bench"})
        if status != 201:
            raise RuntimeError(f"signup failed: {status} {body}")
        token, tenant_id = body["token"], body["tenant"]["id"]
        writer.wait_ready()
        setup_s = time.monotonic() - started
        watch = {f"server:{s.port}": s.process.pid for s in servers}
        print(f"fan-out bench: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
              f"{args.servers} uvicorn processes, rate {args.rate:g}/s; setup {setup_s:.1f} s")

        count = max(1, round(args.rate * args.seconds))
        raw = redis_anchor(ctx, args.rate, count)
        print(f"  raw Redis PUBLISH->receive ({raw['count']}/{raw['expected']}): {fmt(raw)}")

        one = fan_out_phase(ctx, "1 socket", client_urls(servers, 1), token, tenant_id, writer,
                            args.rate, args.anchor_seconds, 1, watch)
        print_phase(one)

        many = fan_out_phase(ctx, f"{args.subscribers} sockets",
                             client_urls(servers, args.subscribers), token, tenant_id, writer,
                             args.rate, args.seconds, args.client_processes, watch)
        print_phase(many)

        ratio = many.latency["p99"] / raw["p99"] if raw["p99"] else float("nan")
        total_s = time.monotonic() - started
        print()
        print(f"fan-out {many.sockets} sockets / {args.servers} processes "
              f"(Redis pubsub layer, {args.client_processes} client process"
              f"{'es' if args.client_processes != 1 else ''}): "
              f"p50 {many.latency['p50']:.1f} ms  p99 {many.latency['p99']:.1f} ms  "
              f"(goal p99 < {GOAL_P99_MS:g} ms)  delivered {many.delivered}/{many.expected}")
        print(f"anchor: 1 socket p50 {one.latency['p50']:.1f} p99 {one.latency['p99']:.1f} ms; "
              f"raw Redis PUBLISH->receive p50 {raw['p50']:.2f} p99 {raw['p99']:.2f} ms")
        print(f"ratio p99({many.sockets} sockets) / p99(raw Redis) = {ratio:.1f}x; "
              f"p99({many.sockets}) / p99(1 socket) = "
              f"{many.latency['p99'] / one.latency['p99']:.1f}x; total {total_s:.0f} s")

        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "benchmark": "fanout",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "load_1m_at_start": os.getloadavg()[0]},
            "config": {**vars(args), "layer": "channels_redis.pubsub.RedisPubSubChannelLayer"},
            "goal_p99_ms": GOAL_P99_MS,
            "fanout": vars(many),
            "anchor_one_socket": vars(one),
            "anchor_raw_redis": raw,
            "ratio_p99_fanout_to_raw_redis": ratio,
            "total_s": round(total_s, 1),
        }, indent=2))
        print(f"figures written to {RESULTS.relative_to(ROOT)}")
        return 0
    except BaseException:
        for server in servers:
            print(f"--- last lines of the server on :{server.port}:\n{server.tail()}",
                  file=sys.stderr)
        raise
    finally:
        if writer is not None:
            writer.stop()
        for server in servers:
            server.stop()
        with contextlib.suppress(Exception):
            drop_database()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
