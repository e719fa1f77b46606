"""Postpaid and prepaid metering: freeze, settle, stop, run out of funds, vanish."""

import pytest

from billing import api as billing
from billing import wallet
from billing.models import LedgerEntry, Meter, Posting, UsageRecord
from core.errors import AlreadyMetered, InsufficientFunds
from eventlog.models import Event
from eventlog.store import recorded

from .conftest import at, fund


def state(tenant_id):
    w = wallet.view(tenant_id)
    return w.available, w.frozen, w.balance


def test_postpaid_start_freezes_two_hours_and_stop_settles_exactly(tenant_a, gpu):
    fund(tenant_a.tenant_id, 10_000)
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                          mode="postpaid", at=at(0))
    assert state(tenant_a.tenant_id) == (2_800, 7_200, 10_000)
    billing.settle(tenant_a.tenant_id, meter.id, at=at(300.7))  # floor: 300 s
    assert state(tenant_a.tenant_id) == (2_500, 7_200, 9_700)  # freeze topped back to 2 hours
    stopped = billing.stop(tenant_a.tenant_id, meter.id, at=at(400.2))  # ceil: 401 s
    assert stopped.state == "stopped" and stopped.stop_reason == "completed"
    assert (stopped.charged, stopped.frozen, stopped.settled_seconds) == (401, 0, 401)
    assert state(tenant_a.tenant_id) == (9_599, 0, 9_599)


def test_a_resource_already_metered_is_refused_a_second_meter(tenant_a, cpu):
    fund(tenant_a.tenant_id, 1_000)
    billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=cpu,
                  mode="postpaid", at=at(0))
    with pytest.raises(AlreadyMetered, match="stop it first") as refused:
        billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=cpu,
                      mode="postpaid", at=at(1))
    assert (refused.value.status, refused.value.code) == (409, "already_metered")
    assert Meter.objects.for_tenant(tenant_a.tenant_id).count() == 1


def test_rounding_never_accumulates_across_settlements(tenant_a, cpu):
    """100 an hour: 36 s cost exactly 1; ten settlements of 10 s charge ceil(100 s) = 3."""
    fund(tenant_a.tenant_id, 1_000)
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=cpu,
                          mode="postpaid", at=at(0))
    for step in range(1, 10):
        billing.settle(tenant_a.tenant_id, meter.id, at=at(10 * step))
    final = billing.stop(tenant_a.tenant_id, meter.id, at=at(100))
    assert final.charged == 3
    charged = sum(UsageRecord.objects.for_tenant(tenant_a.tenant_id).values_list("amount",
                                                                                  flat=True))
    assert charged == 3 and wallet.view(tenant_a.tenant_id).balance == 997


def test_short_postpaid_start_is_402_naming_the_shortfall_and_writes_nothing(tenant_a, gpu):
    fund(tenant_a.tenant_id, 7_199)
    entries = LedgerEntry.objects.for_tenant(tenant_a.tenant_id).count()
    with pytest.raises(InsufficientFunds, match=r"short by 0\.01 USD"):
        billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                      mode="postpaid", at=at(0))
    assert not Meter.objects.for_tenant(tenant_a.tenant_id).exists()
    assert LedgerEntry.objects.for_tenant(tenant_a.tenant_id).count() == entries
    assert state(tenant_a.tenant_id) == (7_199, 0, 7_199)


def test_running_out_of_funds_stops_the_resource_and_tells_its_owner(tenant_a, gpu):
    fund(tenant_a.tenant_id, 7_500)
    meter = billing.start(tenant_a.tenant_id, resource_type="test-resource", resource_id="r1",
                          spec=gpu, mode="postpaid", at=at(0))
    run = billing.settle_running(at=at(200), tenant_ids=[tenant_a.tenant_id])
    assert (run.settled, run.stopped_short) == (1, 0)  # 200 charged, 200 re-frozen: 100 left
    billing.heartbeat(meter.id, at=at(400))
    run = billing.settle_running(at=at(500), tenant_ids=[tenant_a.tenant_id])
    # The owner's policy follows MeterStopped and learns the resource and the reason from it.
    stops = [billing.forced_stop(recorded(row)) for row in Event.objects.filter(
        tenant_id=tenant_a.tenant_id, type="MeterStopped")]
    assert run.stopped_short == 1 and stops == [
        billing.ForcedStop("test-resource", "r1", "insufficient_funds")]
    meter.refresh_from_db()
    assert (meter.state, meter.stop_reason, meter.charged, meter.frozen) == (
        "stopped", "insufficient_funds", 500, 0)
    assert state(tenant_a.tenant_id) == (7_000, 0, 7_000)


def test_a_vanished_resource_is_settled_at_its_last_heartbeat(tenant_a, gpu, settings):
    settings.BILLING_LEASE_TIMEOUT_S = 600
    fund(tenant_a.tenant_id, 20_000)
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                          mode="postpaid", at=at(0))
    billing.heartbeat(meter.id, at=at(1_000))
    assert billing.settle_running(at=at(1_500)).settled == 1  # within the lease: alive
    run = billing.settle_running(at=at(1_700))
    assert run.vanished == 1
    meter.refresh_from_db()  # what was settled stands; nothing after is charged
    assert (meter.stop_reason, meter.charged, meter.frozen) == ("vanished", 1_500, 0)
    assert state(tenant_a.tenant_id) == (18_500, 0, 18_500)

    other = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t2", spec=gpu,
                          mode="postpaid", at=at(2_000))
    billing.heartbeat(other.id, at=at(2_250))
    assert billing.settle_running(at=at(4_000)).vanished == 1
    other.refresh_from_db()
    assert (other.stop_reason, other.charged, other.settled_seconds) == ("vanished", 250, 250)


def test_prepaid_hours_are_drawn_first_then_fall_back_or_stop(tenant_a, gpu):
    fund(tenant_a.tenant_id, 20_000)
    wallet.buy_prepaid_hours(tenant_a.tenant_id, gpu, 1)  # 3,600 s for 3,600
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                          mode="prepaid", at=at(0))
    assert state(tenant_a.tenant_id) == (16_400, 0, 16_400)  # no freeze while hours last
    billing.settle(tenant_a.tenant_id, meter.id, at=at(3_000))
    stopped = billing.settle(tenant_a.tenant_id, meter.id, at=at(3_700))
    assert (stopped.state, stopped.stop_reason) == ("stopped", "insufficient_funds")
    assert (stopped.prepaid_seconds, stopped.charged) == (3_600, 100)  # the overrun is charged

    wallet.buy_prepaid_hours(tenant_a.tenant_id, gpu, 1)
    wallet.set_prepaid_fallback(tenant_a.tenant_id, True)
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t2", spec=gpu,
                          mode="prepaid", at=at(0))
    kept = billing.settle(tenant_a.tenant_id, meter.id, at=at(4_000))
    assert (kept.state, kept.postpaid_from_seconds, kept.charged) == ("running", 3_600, 400)
    assert kept.frozen == 7_200


def test_every_ledger_entry_balances(tenant_a, gpu):
    fund(tenant_a.tenant_id, 50_000)
    wallet.buy_prepaid_hours(tenant_a.tenant_id, gpu, 2)
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t", spec=gpu,
                          mode="postpaid", at=at(0))
    billing.stop(tenant_a.tenant_id, meter.id, at=at(99))
    entries = LedgerEntry.objects.for_tenant(tenant_a.tenant_id)
    assert entries.count() >= 5
    for entry in entries:
        assert sum(p.amount for p in Posting.objects.for_tenant(tenant_a.tenant_id)
                   .filter(entry=entry)) == 0
