"""Settlement throughput: one `settle_running` pass over many running meters, against a raw
INSERT of as many posting rows in the same run.

Setup: TENANTS funded wallets with METERS postpaid meters each, all started at T0 and alive
(heartbeat at T0 + 290 s). The meters are started through the wallet lock and the inline
projection (one transaction per tenant and 1,000 meters, appending MeterStarted + FundsFrozen
for each), not through `metering.start` one by one, unless --via-start.
  - settle: billing.metering.settle_running(at=T0 + 300 s): per meter a UsageCharged and a
            FundsFrozen top-up (four postings), one transaction per tenant.
  - raw:    the same number of rows INSERTed with executemany into a scratch copy of the
            posting table (same columns and indexes), one transaction per tenant.
The ratio is settle time / raw time (lower is better). No assertions: figures to read.

SQLite in a temporary directory by default; PostgreSQL when DATABASE_URL points there (the
database is created if missing, and dropped at the end only if this run created it).
Usage: .venv/bin/python bench/billing.py [--tenants 100] [--meters 100] [--profile]
"""

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PRICE = 250  # an hour: 300 s cost ceil(20.83) = 21, so rounding shows


def prepare_postgres(url: str) -> bool:
    """Create the database named in `url` if it is missing; True when this run created it."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


def drop_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def setup_django(data_dir: str) -> None:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATA_DIR": data_dir,
                       "DEBUG": "false", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class QueryCounter:
    """Counts and times the SQL statements run on the default connection, by kind."""

    def __init__(self) -> None:
        self.count = 0
        self.by_kind: dict[str, list[float]] = {}

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001
        self.count += 1
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = sql.replace('"', "").split()
            verb = words[0].upper()
            table = next((w for w, prev in zip(words[1:], words, strict=False)
                          if prev.upper() in {"INTO", "UPDATE", "FROM"}), "")
            entry = self.by_kind.setdefault(f"{verb} {table}".strip(), [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - began

    def report(self, total_s: float) -> str:
        in_sql = sum(t for _, t in self.by_kind.values())
        lines = [f"  SQL execution {in_sql:.2f} s of {total_s:.2f} s "
                 f"({100 * in_sql / total_s:.0f} %); the rest is Python (ORM, projection):"]
        for kind, (count, spent) in sorted(self.by_kind.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"    {count:7d} x {kind:40s} {spent:7.2f} s")
        return "\n".join(lines)


def create_meters(tenants: int, meters: int, via_start: bool) -> tuple[list[uuid.UUID], object]:
    from accounts.models import Tenant
    from billing import metering, wallet
    from billing.events import FundsFrozen, MeterStarted
    from billing.models import ComputeSpec, MeterLease
    from billing.money import freeze_amount

    spec = ComputeSpec.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}", kind="gpu",
                                      cpu_cores=8, memory_gib=32, price_per_hour=PRICE)
    rows = Tenant.objects.bulk_create(Tenant(name=f"Bench {n}") for n in range(tenants))
    ids = [t.id for t in rows]
    freeze = freeze_amount(PRICE)
    leases = []
    for tenant_id in ids:
        wallet.adjust(tenant_id, meters * freeze * 3, "bench funding", "staff:bench")
        if via_start:
            for n in range(meters):
                m = metering.start(tenant_id, resource_type="task", resource_id=f"t{n}",
                                   spec=spec, mode="postpaid", at=T0)
                leases.append(m.id)
            continue
        for first in range(0, meters, 1000):  # PostgreSQL: at most 4,096 events a transaction
            events: list[object] = []
            for n in range(first, min(first + 1000, meters)):
                meter_id = str(uuid.uuid4())
                events += [MeterStarted(meter_id=meter_id, resource_type="task",
                                        resource_id=f"t{n}", project_id=None,
                                        spec_id=str(spec.id), spec_name=spec.name,
                                        price_per_hour=PRICE, mode="postpaid",
                                        started_at=T0.isoformat()),
                           FundsFrozen(meter_id=meter_id, amount=freeze)]
                leases.append(meter_id)
            wallet.with_wallet(tenant_id, lambda w, events=events: w.append(*events))
    seen = T0 + timedelta(seconds=290)
    MeterLease.objects.bulk_create(
        [MeterLease(meter_id=m, last_seen_at=seen) for m in leases], batch_size=1000,
        update_conflicts=True, update_fields=["last_seen_at"], unique_fields=["meter_id"])
    return ids, spec


def scratch_table() -> None:
    """bench_posting: the posting table's columns and indexes, nothing else."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_posting")
        cursor.execute(
            "CREATE TABLE bench_posting (id bigint PRIMARY KEY, entry_id bigint NOT NULL, "
            f"tenant_id {'uuid' if connection.vendor == 'postgresql' else 'char(32)'} NOT NULL, "
            "account varchar(32) NOT NULL, amount bigint NOT NULL, "
            f"recorded_at {'timestamptz' if connection.vendor == 'postgresql' else 'datetime'} "
            "NOT NULL)")
        cursor.execute("CREATE INDEX bench_posting_entry ON bench_posting (entry_id)")
        cursor.execute("CREATE INDEX bench_posting_tenant ON bench_posting (tenant_id)")
        cursor.execute("CREATE INDEX bench_posting_account ON bench_posting "
                       "(tenant_id, account, recorded_at)")


def raw_insert(tenant_ids: list[uuid.UUID], rows_per_tenant: int) -> float:
    """executemany of `rows_per_tenant` rows per tenant, one transaction per tenant."""
    from django.db import connection, transaction

    accounts = ["tenant:frozen", "platform:revenue", "tenant:available", "tenant:frozen"]
    now = datetime.now(UTC)
    next_id = 1
    began = time.perf_counter()
    for tenant_id in tenant_ids:
        tenant = tenant_id if connection.vendor == "postgresql" else tenant_id.hex
        stamp = now if connection.vendor == "postgresql" else now.isoformat(" ")
        params = []
        for n in range(rows_per_tenant):
            params.append((next_id, next_id // 8, tenant, accounts[n % 4], 21, stamp))
            next_id += 1
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_posting (id, entry_id, tenant_id, account, amount, "
                "recorded_at) VALUES (%s, %s, %s, %s, %s, %s)", params)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--meters", type=int, default=100, help="running meters per tenant")
    parser.add_argument("--via-start", action="store_true",
                        help="start every meter with metering.start (slow setup)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the settlement pass and print where the time goes")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    created = prepare_postgres(url) if url.startswith(("postgres://", "postgresql://")) else False
    data_dir = tempfile.mkdtemp(prefix="automl-bench-billing-")
    try:
        setup_django(data_dir)
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if created:
            drop_postgres(url)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from billing import metering
    from billing.models import LedgerEntry, Meter, Posting

    total = args.tenants * args.meters
    began = time.perf_counter()
    tenant_ids, _ = create_meters(args.tenants, args.meters, args.via_start)
    setup_s = time.perf_counter() - began
    how = "metering.start" if args.via_start else "appends of up to 1,000 meters"
    print(f"database: {connection.vendor}; setup: {args.tenants} tenants x {args.meters} "
          f"running meters in {setup_s:.1f} s ({how})", flush=True)

    postings_before = Posting.objects.unscoped().filter(tenant_id__in=tenant_ids).count()
    entries_before = LedgerEntry.objects.unscoped().filter(tenant_id__in=tenant_ids).count()
    counter = QueryCounter()
    profiler = cProfile.Profile() if args.profile else None
    with connection.execute_wrapper(counter):
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        result = metering.settle_running(at=T0 + timedelta(seconds=300), tenant_ids=tenant_ids)
        if profiler:
            profiler.disable()
        settle_s = time.perf_counter() - began
    postings = Posting.objects.unscoped().filter(tenant_id__in=tenant_ids).count() - \
        postings_before
    entries = LedgerEntry.objects.unscoped().filter(tenant_id__in=tenant_ids).count() - \
        entries_before
    charged = Meter.objects.unscoped().filter(tenant_id__in=tenant_ids, charged=21).count()

    scratch_table()
    raw_s = raw_insert(tenant_ids, postings // args.tenants)

    print(f"settle_running: {total} meters ({result.settled} settled, {result.stopped_short} "
          f"stopped short, {charged} charged 21) in {settle_s:.2f} s: "
          f"{total / settle_s:,.0f} meters/s, {postings / settle_s:,.0f} postings/s "
          f"({entries} ledger entries, {postings} postings, "
          f"{counter.count / total:.1f} SQL statements per meter)")
    print(f"raw INSERT:     {postings} posting rows (executemany, {args.tenants} transactions) "
          f"in {raw_s:.2f} s: {postings / raw_s:,.0f} rows/s")
    print(f"ratio: settlement takes {settle_s / raw_s:.1f} x the raw INSERT of its postings")
    print("where the settlement pass spends its time:")
    print(counter.report(settle_s))
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
            r"billing|eventlog")
        print(out.getvalue())


if __name__ == "__main__":
    main()
