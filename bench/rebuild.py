"""Rebuilding read models from a large log on PostgreSQL against a raw scan of the same rows.

A scratch database gets `--events` events (default 1,000,000) by COPY, not through the API:
tenants with a wallet (meters frozen, charged and stopped: ledger entries, postings, usage
records), projects (created, renamed, described) and datasets (uploaded, validated), their
streams interleaved as in a live log. Then, in the same run:
  - raw:     one server-side (named) psycopg cursor reading every row of those event types in
             position order, all columns, JSON decoded, 10,000 rows a round trip.
  - rebuild: `projections.rebuild(["accounts.projects", "datasets.datasets", "billing.wallet"])`,
             the code `manage.py rebuild_projections` runs: pages of 10,000 events, folded in
             memory, written into shadow tables by COPY and UPDATE ... FROM VALUES, swapped in.
Prints both times, events/s and the ratio rebuild / raw (goal: <= 3).

Usage: .venv/bin/python bench/rebuild.py [--events 1000000] [--code DIR]
`--code DIR` times the rebuild of another checkout (e.g. an older commit) on the same data.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.services import POSTGRES_URL  # noqa: E402

DB_NAME = POSTGRES_URL.rsplit("/", 1)[1] + "_bench_rebuild"  # per TEST_DATABASE_URL: runs apart
ADMIN_URL = POSTGRES_URL.rsplit("/", 1)[0] + "/postgres"
BENCH_URL = POSTGRES_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"
NAMES = ["accounts.projects", "datasets.datasets", "billing.wallet"]
TYPES = sorted({"ProjectCreated", "ProjectRenamed", "ProjectDescriptionChanged",
                "DatasetUploaded", "DatasetValidationStarted", "DatasetValidated",
                "WalletOpened", "MeterStarted", "FundsFrozen", "UsageCharged", "MeterStopped"})
COLUMNS = ("position, tenant_id, stream_type, stream_id, version, type, schema_version, data, "
           "metadata, recorded_at")
START = datetime(2026, 1, 1, tzinfo=UTC)


def bench_env() -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": BENCH_URL, "DJANGO_SETTINGS_MODULE":
            "config.settings.local", "DATA_DIR": tempfile.gettempdir() + "/automl-bench",
            "DEBUG": "false", "LOG_LEVEL": "WARNING", "EVENTLOG_POLICIES": "false"}


def tenant_streams(rng: random.Random) -> list[list[tuple[str, str, str, dict]]]:
    """One tenant's streams (about 1,000 events): (stream type, id, event type, data) each."""
    tenant_wallet = [("wallet", "WalletOpened", {"currency": "USD"})]
    projects, datasets = [], []
    for _ in range(40):
        events = [("ProjectCreated", {"name": f"p{uuid.uuid4().hex[:8]}", "description": "",
                                      "created_by": None})]
        for n in range(4):
            events.append(("ProjectRenamed", {"name": f"r{n}{uuid.uuid4().hex[:8]}"})
                          if n % 2 else ("ProjectDescriptionChanged", {"description": f"d{n}"}))
        projects.append(("project", str(uuid.uuid4()), events))
    for _ in range(50):
        dataset = str(uuid.uuid4())
        datasets.append(("dataset", dataset, [
            ("DatasetUploaded", {"project": None, "name": "digits", "kind": "classification",
                                 "format": "folders", "version": 1, "parent": None,
                                 "storage_key": f"datasets/{dataset}.zip", "size_bytes": 1000,
                                 "file_count": 10, "uncompressed_bytes": 2000,
                                 "builtin": False, "uploaded_by": None}),
            ("DatasetValidationStarted", {}),
            ("DatasetValidated", {"image_count": 10, "labels": ["a", "b"], "errors": [],
                                  "warnings": []})]))
    for _ in range(8):
        meter = str(uuid.uuid4())
        tenant_wallet.append(("wallet", "MeterStarted", {
            "meter_id": meter, "resource_type": "task", "resource_id": str(uuid.uuid4()),
            "project_id": None, "spec_id": str(uuid.uuid4()), "spec_name": "cpu-small",
            "price_per_hour": 360, "mode": "postpaid", "started_at": START.isoformat()}))
        for n in range(40):
            amount = rng.randint(1, 20)
            tenant_wallet.append(("wallet", "FundsFrozen", {"meter_id": meter,
                                                             "amount": amount}))
            tenant_wallet.append(("wallet", "UsageCharged", {
                "meter_id": meter, "seconds": 10, "amount": amount, "from_frozen": amount,
                "from_available": 0, "until_seconds": 10 * (n + 1),
                "at": START.isoformat()}))
        tenant_wallet.append(("wallet", "MeterStopped", {
            "meter_id": meter, "reason": "completed", "seconds": 400,
            "stopped_at": START.isoformat()}))
    return [[("wallet", None, t, d) for _, t, d in tenant_wallet],
            *[[(kind, sid, t, d) for t, d in events] for kind, sid, events in projects],
            *[[(kind, sid, t, d) for t, d in events] for kind, sid, events in datasets]]


def load(count: int) -> int:
    """COPY about `count` events into the scratch database's log; returns how many."""
    rng = random.Random(7)
    written = 0
    meta = json.dumps({"actor": "bench"})
    with psycopg.connect(BENCH_URL) as conn:
        conn.execute("SET session_replication_role = replica")  # positions given, no trigger
        with conn.cursor().copy(f"COPY eventlog_event ({COLUMNS}) FROM STDIN") as copy:
            while written < count:
                tenant = str(uuid.uuid4())
                streams = [[(kind, sid or tenant, t, d) for kind, sid, t, d in stream]
                           for stream in tenant_streams(rng)]
                # Interleaved as in a live log; each stream keeps its own order.
                pending, versions = list(range(len(streams))), [0] * len(streams)
                while pending and written < count:
                    index = rng.choice(pending)
                    kind, sid, name, data = streams[index][versions[index]]
                    versions[index] += 1
                    if versions[index] == len(streams[index]):
                        pending.remove(index)
                    written += 1
                    copy.write_row((written, tenant, kind, sid, versions[index], name, 1,
                                    json.dumps(data), meta,
                                    START + timedelta(milliseconds=written)))
        conn.commit()
        conn.execute("ANALYZE eventlog_event")
        conn.commit()
    return written


def raw_scan() -> tuple[int, float]:
    """Every event of the rebuilt types through one named cursor, JSON decoded."""
    with psycopg.connect(BENCH_URL) as conn:
        started = time.perf_counter()
        rows = 0
        with conn.cursor(name="bench_scan") as cursor:
            cursor.itersize = 10_000
            cursor.execute(f"SELECT {COLUMNS} FROM eventlog_event WHERE type = ANY(%s) "
                           "ORDER BY position", [TYPES])
            for _row in cursor:
                rows += 1
        return rows, time.perf_counter() - started


def rebuild(code: Path) -> tuple[dict, float]:
    """Time the rebuild in a fresh process of the given checkout (its own Django setup)."""
    script = (
        "import json, time, django; django.setup()\n"
        "from eventlog import projections\n"
        "started = time.perf_counter()\n"
        f"handled = projections.rebuild({NAMES!r})\n"
        "print(json.dumps({'handled': handled, 'seconds': time.perf_counter() - started}))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=code, env=bench_env(),
                            check=True, capture_output=True, text=True)
    body = json.loads(result.stdout.strip().splitlines()[-1])
    return body["handled"], body["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="checkout whose rebuild to time (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT,
                       env=bench_env(), check=True)
        started = time.perf_counter()
        written = load(args.events)
        print(f"loaded {written:,} events by COPY in {time.perf_counter() - started:.1f} s")
        rows, raw_s = raw_scan()
        handled, rebuild_s = rebuild(args.code)
        rows_again, raw_again_s = raw_scan()  # the anchor again, after: the machine is noisy
        assert rows == rows_again == sum(handled.values()) == written, (rows, handled)
        raw_best = min(raw_s, raw_again_s)
        print(f"raw server-side scan: {rows:,} events in {raw_s:.2f} s and {raw_again_s:.2f} s "
              f"({rows / raw_best:,.0f} events/s at best)")
        print(f"rebuild ({args.code}): {sum(handled.values()):,} events in {rebuild_s:.2f} s "
              f"({sum(handled.values()) / rebuild_s:,.0f} events/s); per projection {handled}")
        print(f"ratio rebuild / raw scan: {rebuild_s / raw_best:.2f} (goal <= 3)")
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
