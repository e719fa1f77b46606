"""Event-log append throughput on PostgreSQL against a raw INSERT of the same rows, same run.

For 1 and 8 concurrent writers (separate processes, each with its own connection):
  - raw:    one INSERT statement of two rows (autocommit) into a copy of the event table
            (same columns, indexes and unique constraint, no triggers), through psycopg.
  - append: eventlog.store.append(stream, expected_version, [two events]) through Django:
            version check, insert with the position trigger, inline projections, on-commit hook.
In a further 8-writer append run, two followers read the log by position: the platform's
gap-free reader and a naive `position > cursor` reader; both are checked against the table.
CPU per event: one process appends (or INSERTs) in a loop, and the CPU time of the process and
of its PostgreSQL backend is divided by the events: on a machine whose cores are all busy
(2 here, with 8 writers) throughput is bound by the sum, and unlike events/s it barely moves
when other work loads the machine.

Goal: append >= 0.6 x raw while the gap-free follower misses nothing.
Usage: .venv/bin/python bench/eventlog.py [--seconds 4] [--rounds 3]
"""

import argparse
import itertools
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.services import POSTGRES_URL  # noqa: E402

DB_NAME = POSTGRES_URL.rsplit("/", 1)[1] + "_bench_eventlog"  # per TEST_DATABASE_URL: runs apart
ADMIN_URL = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
BENCH_URL = POSTGRES_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"
DATA = json.dumps({"epoch": 3, "loss": 0.4213, "metrics": {"accuracy": 0.91}})
META = json.dumps({"actor": "bench", "request_id": "r"})


def bench_env() -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": BENCH_URL, "DJANGO_SETTINGS_MODULE":
            "config.settings.local", "DATA_DIR": tempfile.gettempdir() + "/automl-bench",
            "DEBUG": "false", "LOG_LEVEL": "WARNING"}


def create_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=bench_env(),
                   check=True)
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_raw (LIKE eventlog_event INCLUDING ALL)")


def drop_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def setup_django() -> None:
    os.environ.update(bench_env())
    import django

    django.setup()


def raw_writer(ready: mp.Queue, start: mp.Event, stop_at: mp.Value, out: mp.Queue) -> None:
    tenant, stream = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        ready.put(1)
        start.wait()
        version, count = 0, 0
        while time.time() < stop_at.value:
            conn.execute(
                "INSERT INTO bench_raw (tenant_id, stream_type, stream_id, version, type, "
                "schema_version, data, metadata, recorded_at) VALUES "
                "(%s, 'bench', %s, %s, 'BenchTicked', 1, %s, %s, now()), "
                "(%s, 'bench', %s, %s, 'BenchTicked', 1, %s, %s, now())",
                (tenant, stream, version + 1, DATA, META, tenant, stream, version + 2, DATA,
                 META))
            version += 2
            count += 2
    out.put(count)


def _bench_event() -> type:
    from dataclasses import dataclass

    from eventlog.schema import event

    @event("BenchTicked")
    @dataclass(frozen=True)
    class BenchTicked:
        epoch: int
        loss: float
        metrics: dict

    return BenchTicked


def append_writer(tenant: str, ready: mp.Queue, start: mp.Event, stop_at: mp.Value,
                  out: mp.Queue) -> None:
    setup_django()
    from eventlog.store import Stream, append

    ticked = _bench_event()
    stream = Stream.of(tenant, "bench", uuid.uuid4())
    events = [ticked(epoch=3, loss=0.4213, metrics={"accuracy": 0.91})] * 2
    append(stream, 0, events)  # warm the connection and caches before the clock starts
    version, count = 2, 0
    ready.put(1)
    start.wait()
    while time.time() < stop_at.value:
        append(stream, version, events)
        version += 2
        count += 2
    out.put(count)


def follower(tenant: str, naive: bool, ready: mp.Queue, start: mp.Event, stop_at: mp.Value,
             out: mp.Queue) -> None:
    setup_django()
    from django.db import connection

    from eventlog.store import read_log

    def naive_page(after: int) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT position FROM eventlog_event WHERE tenant_id = %s AND "
                           "position > %s ORDER BY position LIMIT 500", [tenant, after])
            return [row[0] for row in cursor.fetchall()]

    seen, cursor_pos = [], 0
    read_log(tenant_id=tenant, after=0, limit=1)  # warm the connection before the clock
    ready.put(1)
    start.wait()
    def more_stored(after: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM eventlog_event WHERE tenant_id = %s AND position > %s "
                           "LIMIT 1", [tenant, after])
            return cursor.fetchone() is not None

    while True:
        page = (naive_page(cursor_pos) if naive else
                [e.position for e in read_log(tenant_id=tenant, after=cursor_pos, limit=500)])
        seen += page
        if page:
            cursor_pos = page[-1]
            continue
        # Writers done: stop once nothing lies past the cursor. A transaction open anywhere in
        # the cluster holds the gap-free reader's horizon back, so it may need a while longer.
        if time.time() > stop_at.value + 1.0 and (
                not more_stored(cursor_pos) or time.time() > stop_at.value + 60.0):
            break
        time.sleep(0.002)
    out.put(seen)


def cpu_worker(kind: str, count: int, out: mp.Queue) -> None:
    """`count` appends (or raw INSERTs) of two events in a row: CPU spent by this process and
    by its PostgreSQL backend, per event. Unlike events/s, this holds on a loaded machine."""
    import psutil

    if kind == "raw":
        conn = psycopg.connect(BENCH_URL, autocommit=True)
        backend = conn.info.backend_pid
        tenant, stream, version = str(uuid.uuid4()), str(uuid.uuid4()), 0

        def once() -> None:
            nonlocal version
            conn.execute(
                "INSERT INTO bench_raw (tenant_id, stream_type, stream_id, version, type, "
                "schema_version, data, metadata, recorded_at) VALUES "
                "(%s, 'bench', %s, %s, 'BenchTicked', 1, %s, %s, now()), "
                "(%s, 'bench', %s, %s, 'BenchTicked', 1, %s, %s, now())",
                (tenant, stream, version + 1, DATA, META, tenant, stream, version + 2, DATA,
                 META))
            version += 2
    else:
        setup_django()
        from django.db import connection

        from eventlog.store import Stream, append

        ticked = _bench_event()
        events = [ticked(epoch=3, loss=0.4213, metrics={"accuracy": 0.91})] * 2
        stream, version = Stream.of(uuid.uuid4(), "bench", uuid.uuid4()), 0
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid

        def once() -> None:
            nonlocal version
            append(stream, version, events)
            version += 2
    for _ in range(50):  # warm: prepared statements, caches
        once()
    server = psutil.Process(backend)
    client_before, server_before = time.process_time(), sum(server.cpu_times()[:2])
    for _ in range(count):
        once()
    client = time.process_time() - client_before
    server_s = sum(server.cpu_times()[:2]) - server_before
    out.put({"client_us": client * 1e6 / (2 * count), "server_us": server_s * 1e6 / (2 * count)})


def cpu_cost(kind: str, count: int) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=cpu_worker, args=(kind, count, out))
    proc.start()
    result = out.get(timeout=600)
    proc.join()
    return result


def run(kind: str, writers: int, seconds: float, follow: bool = False) -> dict:
    ctx = mp.get_context("spawn")
    start, out, stop_at, ready = ctx.Event(), ctx.Queue(), ctx.Value("d", 0.0), ctx.Queue()
    tenant = str(uuid.uuid4())
    procs = []
    for _ in range(writers):
        args = ((ready, start, stop_at, out) if kind == "raw" else
                (tenant, ready, start, stop_at, out))
        procs.append(ctx.Process(target=raw_writer if kind == "raw" else append_writer,
                                 args=args))
    followers = []
    if follow:
        followers_out = ctx.Queue()
        for naive in (False, True):
            followers.append(ctx.Process(target=follower,
                                         args=(tenant, naive, ready, start, stop_at,
                                               followers_out)))
    for proc in procs + followers:
        proc.start()
    for _ in procs + followers:  # every process set up (Django, connection) before the clock
        ready.get(timeout=120)
    stop_at.value = time.time() + seconds
    began = time.time()
    start.set()
    total = sum(out.get() for _ in procs)
    elapsed = time.time() - began
    result = {"kind": kind, "writers": writers, "events": total, "per_s": total / elapsed}
    if follow:
        results = [followers_out.get() for _ in followers]
        with psycopg.connect(BENCH_URL) as conn:
            stored = [row[0] for row in conn.execute(
                "SELECT position FROM eventlog_event WHERE tenant_id = %s ORDER BY position",
                [tenant])]
        for label, seen in zip(("gap_free", "naive"), sorted(results, key=len, reverse=True),
                               strict=True):
            result[label] = {"missed": len(set(stored) - set(seen)),
                             "duplicates": len(seen) - len(set(seen)),
                             "out_of_order": sum(b <= a for a, b in itertools.pairwise(seen))}
    for proc in procs + followers:
        proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-appends", type=int, default=2000,
                        help="appends per round of the CPU-per-event measure")
    args = parser.parse_args()
    create_database()
    try:
        figures = {}
        for writers in (1, 8):
            # Alternate the two so that drift in machine load hits both alike; report medians.
            rounds = [(run("raw", writers, args.seconds), run("append", writers, args.seconds))
                      for _ in range(args.rounds)]
            raw = statistics.median(r["per_s"] for r, _ in rounds)
            appended = statistics.median(a["per_s"] for _, a in rounds)
            ratios = [a["per_s"] / r["per_s"] for r, a in rounds]
            figures[writers] = {"raw_per_s": raw, "append_per_s": appended, "ratios": ratios}
            print(f"{writers} writer(s): append {appended:8.0f} events/s   raw INSERT {raw:8.0f} "
                  f"events/s   ratio {appended / raw:.2f} x (goal >= 0.6 x; rounds: "
                  f"{', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
        # CPU per event, client and database: what bounds 8 writers on a machine whose cores
        # are all busy (this one has 2), and the figure that holds when other work loads it.
        costs = [(cpu_cost("raw", args.cpu_appends), cpu_cost("append", args.cpu_appends))
                 for _ in range(args.rounds)]
        cpu = {}
        for index, kind in enumerate(("raw", "append")):
            cpu[kind] = {part: statistics.median(c[index][part] for c in costs)
                         for part in ("client_us", "server_us")}
            cpu[kind]["total_us"] = cpu[kind]["client_us"] + cpu[kind]["server_us"]
        figures["cpu_per_event"] = cpu
        raw_cpu, app_cpu = cpu["raw"], cpu["append"]
        print(f"CPU per event (medians of {args.rounds}): append client "
              f"{app_cpu['client_us']:.0f} us + database {app_cpu['server_us']:.0f} us = "
              f"{app_cpu['total_us']:.0f} us; raw INSERT client {raw_cpu['client_us']:.0f} us + "
              f"database {raw_cpu['server_us']:.0f} us = {raw_cpu['total_us']:.0f} us; "
              f"raw/append: database {raw_cpu['server_us'] / app_cpu['server_us']:.2f} x, "
              f"both {raw_cpu['total_us'] / app_cpu['total_us']:.2f} x", flush=True)
        followed = run("append", 8, args.seconds, follow=True)
        figures["followers"] = followed
        print(f"8 writers followed by position ({followed['events']} events): "
              f"gap-free reader {followed['gap_free']}; naive `position > cursor` reader "
              f"{followed['naive']}")
        out_dir = ROOT / "bench" / "results"
        out_dir.mkdir(exist_ok=True)
        (out_dir / "eventlog.json").write_text(json.dumps(figures, indent=2))
    finally:
        drop_database()


if __name__ == "__main__":
    main()
