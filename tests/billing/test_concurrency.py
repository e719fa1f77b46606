"""Concurrent commands on one wallet: freezes never spend the same money twice, and settling and
stopping the same meters at once never charges or releases a freeze twice.

PostgreSQL only: there the wallet row lock (SELECT ... FOR UPDATE) is what serialises them;
SQLite serialises every writer anyway. Each thread uses its own connection, closed at its end.
"""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts.models import Tenant
from billing import metering, wallet
from billing.models import ComputeSpec, Meter
from billing.money import freeze_amount, usage_amount
from core.errors import InsufficientFunds
from eventlog.store import load_stream

from .conftest import at, fund
from .test_invariants import assert_books_balance

pytestmark = pytest.mark.django_db(transaction=True)


def spec(name: str, price: int) -> ComputeSpec:
    return ComputeSpec.objects.create(name=name, kind="gpu", cpu_cores=4, memory_gib=16,
                                      price_per_hour=price)


def in_threads(calls: list, workers: int | None = None) -> list[str]:
    """Run every call at once (a barrier), each thread on its own connection; their outcomes."""
    barrier = threading.Barrier(len(calls))

    def run(call) -> str:
        try:
            barrier.wait(timeout=60)
            call()
            return "ok"
        except InsufficientFunds as exc:
            assert exc.status == 402
            return "402"
        finally:
            connection.close()

    with ThreadPoolExecutor(workers or len(calls)) as pool:
        return list(pool.map(run, calls))


def test_fifty_concurrent_starts_on_money_for_seven_freeze_exactly_seven(postgres_only):
    tenant = Tenant.objects.create(name="Racing")
    gpu = spec("race-gpu", 3600)
    fund(tenant.id, 7 * freeze_amount(gpu.price_per_hour))

    def start(n: int):
        return lambda: metering.start(tenant.id, resource_type="task", resource_id=f"t{n}",
                                      spec=gpu, mode="postpaid", at=at(0))

    outcomes = in_threads([start(n) for n in range(50)])

    assert Counter(outcomes) == {"ok": 7, "402": 43}
    w = wallet.view(tenant.id)
    assert (w.available, w.frozen) == (0, 7 * 7_200)
    assert Meter.objects.for_tenant(tenant.id).filter(state=Meter.RUNNING).count() == 7
    assert not Meter.objects.for_tenant(tenant.id).exclude(state=Meter.RUNNING).exists()
    assert_books_balance(tenant.id)


def test_concurrent_settlements_and_stops_never_settle_a_meter_twice(postgres_only):
    """Per meter: a stop, a settle and six settlement passes of both tenants, all at once."""
    gpu, cpu = spec("race-gpu", 3600), spec("race-cpu", 100)
    tenants = [Tenant.objects.create(name=f"Racing {n}") for n in range(2)]
    meters = []
    for tenant in tenants:
        fund(tenant.id, 500_000)
        for n in range(6):
            meters.append(metering.start(
                tenant.id, resource_type="task", resource_id=f"t{n}", spec=(gpu, cpu)[n % 2],
                mode="postpaid", at=at(0)))
    ids = [t.id for t in tenants]
    stop_at = {m.id: 300.25 + 17.5 * n for n, m in enumerate(meters)}
    settle_at = [250.5 + 61.25 * k for k in range(6)]

    calls = []
    for m in meters:
        calls.append(lambda m=m: metering.stop(m.tenant_id, m.id, at=at(stop_at[m.id])))
        calls.append(lambda m=m: metering.settle(m.tenant_id, m.id, at=at(400.75)))
    calls += [lambda s=s: metering.settle_running(at=at(s), tenant_ids=ids) for s in settle_at]
    assert set(in_threads(calls)) == {"ok"}

    possible_floors = {int(s) for s in [*settle_at, 400.75]}
    for tenant in tenants:
        assert_books_balance(tenant.id)  # freezes charged or released once, charged = formula
        events = load_stream(wallet.wallet_stream(tenant.id).id)
        per_meter = Counter((e.data.get("meter_id"), e.type) for e in events)
        charged = 0
        for m in Meter.objects.for_tenant(tenant.id):
            assert (m.state, m.stop_reason, m.frozen) == (Meter.STOPPED, "completed", 0)
            assert per_meter[(str(m.id), "MeterStopped")] == 1
            assert per_meter[(str(m.id), "FreezeReleased")] == 1
            # A stop counts every started second, unless a later settlement got there first.
            ceil_stop = -int(-stop_at[m.id] // 1)
            assert m.settled_seconds == ceil_stop or (
                m.settled_seconds > ceil_stop and m.settled_seconds in possible_floors)
            assert m.charged == usage_amount(m.settled_seconds, m.price_per_hour)
            charged += m.charged
        w = wallet.view(tenant.id)
        assert (w.available, w.frozen) == (500_000 - charged, 0)
