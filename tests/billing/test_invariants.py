"""Random wallet histories against a pure-Python model, with the books checked after every step.

A hypothesis state machine deposits, debits, buys prepaid hours, starts postpaid and prepaid
meters on two specs (3,600 an hour: a unit a second; 100 an hour: rounding shows), changes
their prices mid-run, advances a clock, settles, stops, heartbeats, lets runs vanish and
toggles the prepaid fallback. After every step the wallet, meters and prepaid balances must
equal the model, and the ledger must hold its own rules whatever the model says:

- every entry's postings add up to zero, and each account's postings add up to its column;
- a freeze, a purchase or a debit never leaves `available` negative; only a usage charge may;
- every meter's freeze is charged or released once; a stopped meter holds nothing frozen;
- every meter has charged ceil(postpaid seconds x its start price / 3600) and its usage
  seconds are its prepaid seconds plus its postpaid seconds;
- prepaid seconds never go below zero, and what the hours of a spec were drawn for adds up to
  what they cost once they are all used.

Usage charges are what may take `available` below zero, when too little is frozen behind them:
a postpaid run left unsettled for more than the two frozen hours (a late scheduler, a vanished
run), prepaid hours running out between settlements (the overrun has no freeze behind it), and
several prepaid runs started on the same last hours of a spec (each start only checks that some
hours are left; all but one then run postpaid with nothing frozen until the next settlement).

Each example runs on a fresh tenant inside a savepoint rolled back at its end. The rebuild test
commits instead (a PostgreSQL reader only sees committed positions) and replays the log.
"""

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Tenant
from billing import ledger, metering, wallet
from billing.forced_stops import forced_stop
from billing.models import (
    ComputeSpec,
    LedgerEntry,
    Meter,
    Posting,
    PrepaidBalance,
    Topup,
    UsageRecord,
    Wallet,
)
from billing.projections import WalletBook
from core.errors import InsufficientFunds
from eventlog.models import Event
from eventlog.projections import rebuild
from eventlog.store import load_stream, recorded

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
US = 1_000_000  # microseconds a second
PRICES = [1, 7, 100, 250, 3600, 7200]  # what staff may change a spec's price to mid-run
SPECS = {"gpu": 3600, "cpu": 100}
RESOURCE = "billing-invariants"


def notified(tenant_id: uuid.UUID) -> list[tuple[str, str]]:
    """The forced stops of RESOURCE that its owner's policy follows (MeterStopped in the log)."""
    rows = Event.objects.filter(tenant_id=tenant_id, type="MeterStopped").order_by("position")
    stops = [forced_stop(recorded(row)) for row in rows]
    return [(s.resource_id, s.reason) for s in stops if s and s.resource_type == RESOURCE]


def when(us: int) -> datetime:
    return T0 + timedelta(microseconds=us)


def cost(seconds: int, price: int) -> int:
    """ceil(seconds x price / 3600), written independently of billing.money."""
    return (seconds * price + 3599) // 3600


# --- the model ---------------------------------------------------------------------------------


@dataclass
class MeterModel:
    id: uuid.UUID
    resource: str
    spec: str
    price: int
    start_us: int
    last_seen_us: int
    postpaid_from: int | None
    settled: int = 0
    charged: int = 0
    frozen: int = 0
    prepaid_seconds: int = 0
    prepaid_value: int = 0
    running: bool = True
    reason: str = ""


@dataclass
class WalletModel:
    available: int = 0
    frozen: int = 0
    fallback: bool = False
    hours: dict[str, list[int]] = field(default_factory=dict)  # spec -> [seconds, value]
    meters: dict[uuid.UUID, MeterModel] = field(default_factory=dict)

    def freeze(self, m: MeterModel, amount: int) -> None:
        self.available -= amount
        self.frozen += amount
        m.frozen += amount

    def release(self, m: MeterModel) -> None:
        self.available += m.frozen
        self.frozen -= m.frozen
        m.frozen = 0

    def advance(self, m: MeterModel, seconds: int, stop_reason: str | None) -> str | None:
        """Bring `m` to `seconds` of usage; returns the reason billing stopped it itself."""
        forced = None
        if m.postpaid_from is None and seconds > m.settled:
            pool = self.hours.setdefault(m.spec, [0, 0])
            take = min(seconds - m.settled, pool[0])
            if take:
                value = pool[1] if take == pool[0] else pool[1] * take // pool[0]
                pool[0] -= take
                pool[1] -= value
                m.prepaid_seconds += take
                m.prepaid_value += value
                m.settled += take
            if m.settled < seconds:  # the hours ran out: the rest is postpaid
                m.postpaid_from = m.settled
                # a meter stopping anyway (vanished, stopped) keeps that reason
                if not self.fallback and stop_reason is None:
                    forced = metering.INSUFFICIENT_FUNDS
        if m.postpaid_from is not None and seconds > max(m.settled, m.postpaid_from):
            due = cost(seconds - m.postpaid_from, m.price) - m.charged
            from_frozen = min(due, m.frozen)
            m.frozen -= from_frozen
            self.frozen -= from_frozen
            self.available -= due - from_frozen
            m.charged += due
        m.settled = max(m.settled, seconds)
        if stop_reason is None and forced is None and m.postpaid_from is not None:
            need = 2 * m.price - m.frozen
            if need > 0:
                if self.available >= need:
                    self.freeze(m, need)
                else:
                    forced = metering.INSUFFICIENT_FUNDS
        if stop_reason is not None or forced is not None:
            self.release(m)
            m.running = False
            m.reason = forced or stop_reason or ""
        return forced


def seconds_at(m: MeterModel, at_us: int, *, final: bool) -> int:
    elapsed = max(0, at_us - m.start_us)
    whole = -(-elapsed // US) if final else elapsed // US
    return max(whole, m.settled)


# --- the books, checked from the database alone -----------------------------------------------


def assert_books_balance(tenant_id: object) -> dict:
    """Check the ledger's own rules for one tenant; returns what it read, for further checks."""
    w = Wallet.objects.for_tenant(tenant_id).get()
    events = load_stream(wallet.wallet_stream(tenant_id).id)
    assert w.version == len(events) == events[-1].version

    # Every entry balances; each account's postings add up to the column it mirrors.
    unbalanced = (Posting.objects.for_tenant(tenant_id).values("entry_id")
                  .annotate(total=Sum("amount")).exclude(total=0))
    assert not list(unbalanced), f"entries that do not balance: {list(unbalanced)}"
    by_account = dict(Posting.objects.for_tenant(tenant_id).values_list("account")
                      .annotate(total=Sum("amount")).values_list("account", "total"))
    assert by_account.get(ledger.AVAILABLE, 0) == w.available
    assert by_account.get(ledger.FROZEN, 0) == w.frozen
    balances = list(PrepaidBalance.objects.for_tenant(tenant_id))
    assert by_account.get(ledger.PREPAID, 0) == sum(b.value for b in balances)
    assert sum(by_account.values()) == 0
    money_events = [e for e in events if ledger.postings_for(e.type, e.data)]
    assert LedgerEntry.objects.for_tenant(tenant_id).count() == len(money_events)

    # Only a usage charge may take `available` below zero (or further below it).
    available, negative_by = 0, Counter()
    for e in events:
        before = available
        available += sum(v for a, v in ledger.postings_for(e.type, e.data)
                         if a == ledger.AVAILABLE)
        if available < 0 and available < before:
            assert e.type == "UsageCharged", f"{e.type} left available at {available}"
            negative_by[e.data["meter_id"]] += 1
        if e.type in {"FundsFrozen", "PrepaidHoursPurchased"} or (
                e.type == "BalanceAdjusted" and e.data["amount"] < 0):
            assert available >= 0, f"{e.type} left available at {available}"
    assert available == w.available

    # Per meter: freezes charged or released once, usage conserved, charged = the formula.
    per_meter: dict[str, Counter] = defaultdict(Counter)
    for e in events:
        if "meter_id" not in e.data:
            continue
        c = per_meter[e.data["meter_id"]]
        c[e.type] += 1
        match e.type:
            case "FundsFrozen":
                c["frozen_in"] += e.data["amount"]
            case "FreezeReleased":
                c["released"] += e.data["amount"]
            case "UsageCharged":
                c["from_frozen"] += e.data["from_frozen"]
                c["charged"] += e.data["amount"]
                c["postpaid_s"] += e.data["seconds"]
            case "PrepaidHoursConsumed":
                c["prepaid_s"] += e.data["seconds"]
                c["prepaid_value"] += e.data["value"]
    usage = {row["meter_id"]: row for row in UsageRecord.objects.for_tenant(tenant_id)
             .values("meter_id").annotate(seconds=Sum("seconds"), amount=Sum("amount"))}
    meters = list(Meter.objects.for_tenant(tenant_id))
    assert len(meters) == len(per_meter)
    for m in meters:
        c = per_meter[str(m.id)]
        assert c["MeterStarted"] == 1
        assert c["FreezeReleased"] <= 1 and c["MeterStopped"] == (m.state == Meter.STOPPED)
        if m.state == Meter.STOPPED:
            assert m.frozen == 0
        else:
            assert c["FreezeReleased"] == 0
        assert c["frozen_in"] == c["from_frozen"] + c["released"] + m.frozen
        assert m.charged == c["charged"] and m.prepaid_value == c["prepaid_value"]
        postpaid_seconds = m.settled_seconds - m.postpaid_from_seconds if m.postpaid else 0
        assert m.charged == cost(postpaid_seconds, m.price_per_hour), m.id
        assert c["postpaid_s"] == postpaid_seconds
        assert m.prepaid_seconds == c["prepaid_s"]
        assert m.prepaid_seconds + postpaid_seconds == m.settled_seconds
        if m.postpaid:
            assert m.prepaid_seconds == m.postpaid_from_seconds
        u = usage.get(m.id, {"seconds": 0, "amount": 0})
        assert (u["seconds"], u["amount"]) == (m.settled_seconds, m.charged + m.prepaid_value)
    assert w.frozen == sum(m.frozen for m in meters)
    assert by_account.get(ledger.REVENUE, 0) == sum(m.charged + m.prepaid_value for m in meters)

    # Prepaid hours: never below zero; drawn + left = paid, and nothing is left once all used.
    paid, drawn = Counter(), Counter()
    for e in events:
        if e.type == "PrepaidHoursPurchased":
            paid[e.data["spec_id"]] += e.data["amount"]
        elif e.type == "PrepaidHoursConsumed":
            drawn[e.data["spec_id"]] += e.data["value"]
    for b in balances:
        assert b.seconds >= 0 and b.value >= 0
        assert drawn[str(b.spec_id)] + b.value == paid[str(b.spec_id)]
        if b.seconds == 0:
            assert b.value == 0 and drawn[str(b.spec_id)] == paid[str(b.spec_id)]
    return {"wallet": w, "meters": {m.id: m for m in meters}, "balances": balances,
            "negative_by": negative_by}


# --- the state machine ------------------------------------------------------------------------


waits = st.one_of(
    st.integers(0, 5 * US),                   # a few seconds, fractions included
    st.integers(0, 20 * 60 * US),             # within a lease
    st.sampled_from([                          # past a lease, past the two frozen hours
        (django_settings.BILLING_LEASE_TIMEOUT_S + 1) * US, 2 * 3600 * US + US // 2,
        3 * 3600 * US + 1]),
)
amounts = st.one_of(st.integers(1, 1_000), st.sampled_from([199, 7_200, 14_399, 30_000]))
specs = st.sampled_from(sorted(SPECS))


class WalletMachine(RuleBasedStateMachine):
    """One tenant's wallet driven through the commands, next to `WalletModel`.

    A few coarse rules, each choosing its action: hypothesis leaves whole rules out of some
    examples, and every example should still reach meters, money and time.
    """

    rollback = True  # each example in a savepoint rolled back at teardown

    def __init__(self) -> None:
        super().__init__()
        self.atomic = None
        if self.rollback:
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
        self.tenant = Tenant.objects.create(name="invariants")
        suffix = uuid.uuid4().hex[:8]
        self.specs = {
            name: ComputeSpec.objects.create(
                name=f"inv-{name}-{suffix}", kind="gpu" if name == "gpu" else "cpu",
                cpu_cores=2, memory_gib=4, price_per_hour=price)
            for name, price in SPECS.items()}
        self.model = WalletModel()
        self.now = 0
        self.resources = 0
        self.notices: list[tuple[str, str]] = []  # the forced stops the owner must hear of

    @property
    def tid(self) -> uuid.UUID:
        return self.tenant.id

    def teardown(self) -> None:
        if self.atomic is not None:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

    def has_meters(self) -> bool:
        return bool(self.model.meters)

    @initialize(amount=st.sampled_from([60_000, 20_000, 7_200, 199, 0]),
                hours=st.sampled_from([0, 1, 2]), fallback=st.booleans(),
                starts=st.lists(st.tuples(specs, st.sampled_from(metering.MODES)), max_size=3),
                reprice=st.sampled_from([None, 1, 7, 7200]))
    def open_wallet(self, amount: int, hours: int, fallback: bool,
                    starts: list[tuple[str, str]], reprice: int | None) -> None:
        """Most examples start with money, some hours and meters already running (and often
        repriced at once: they must go on at the price of their start)."""
        wallet.set_prepaid_fallback(self.tid, fallback)  # opens the wallet stream
        self.model.fallback = fallback
        if amount:
            self.deposit(amount)
        if hours:
            self.buy_hours("cpu", hours)
        for spec, mode in starts:
            self.start(spec, mode)
        if reprice is not None:
            for spec in {spec for spec, _ in starts}:
                self.reprice(spec, reprice)

    # --- the rules ----------------------------------------------------------------------------

    @rule(action=st.sampled_from(["deposit", "deposit", "debit", "debit_all", "buy_hours",
                                  "fallback_on", "fallback_off", "reprice"]),
          amount=amounts, spec=specs, hours=st.integers(1, 2), price=st.sampled_from(PRICES))
    def money(self, action: str, amount: int, spec: str, hours: int, price: int) -> None:
        match action:
            case "deposit":
                self.deposit(amount)
            case "debit":
                self.debit(amount)
            case "debit_all":
                self.debit(self.model.available)
            case "buy_hours":
                self.buy_hours(spec, hours)
            case "fallback_on" | "fallback_off":
                enabled = action == "fallback_on"
                wallet.set_prepaid_fallback(self.tid, enabled)
                self.model.fallback = enabled
            case "reprice":
                self.reprice(spec, price)

    @rule(spec=specs, mode=st.sampled_from(metering.MODES))
    def start(self, spec: str, mode: str) -> None:
        price = self.specs[spec].price_per_hour
        m = self.model
        postpaid_from = 0 if mode == metering.POSTPAID else None
        refused = False
        if mode == metering.PREPAID and m.hours.get(spec, [0, 0])[0] <= 0:
            refused = not m.fallback
            postpaid_from = 0
        if postpaid_from == 0 and 2 * price > m.available:
            refused = True
        self.resources += 1
        try:
            meter = metering.start(self.tid, resource_type=RESOURCE,
                                   resource_id=f"r{self.resources}", spec=self.specs[spec],
                                   mode=mode, at=when(self.now))
        except InsufficientFunds:
            assert refused
            return
        assert not refused
        assert meter.price_per_hour == price
        mm = MeterModel(meter.id, meter.resource_id, spec, price, self.now, self.now,
                        postpaid_from)
        m.meters[meter.id] = mm
        if postpaid_from == 0:
            m.freeze(mm, 2 * price)

    @rule(action=st.sampled_from(["tick", "tick", "silence", "wait", "settle_running"]),
          dt=waits)
    def time_passes(self, action: str, dt: int) -> None:
        """tick: the usual period (time passes, live resources beat, the scheduler settles);
        silence: time passes without heartbeats before the scheduler settles (a long one makes
        running resources vanish); wait: time passes, nothing runs."""
        if action != "settle_running":
            self.now += dt
        if action == "tick":
            for mm in self.model.meters.values():
                if mm.running:
                    self.heartbeat(mm)
        if action != "wait":
            self.settle_running()

    @precondition(has_meters)
    @rule(action=st.sampled_from(["heartbeat", "settle", "stop"]), index=st.integers(0, 20))
    def meter(self, action: str, index: int) -> None:
        meters = list(self.model.meters.values())
        running = [mm for mm in meters if mm.running]
        mm = (running or meters)[index % len(running or meters)]
        if index >= 15:  # now and then, a meter already stopped: nothing must change
            mm = meters[index % len(meters)]
        match action:
            case "heartbeat":
                self.heartbeat(mm)
            case "settle":
                metering.settle(self.tid, mm.id, at=when(self.now))
                if mm.running:
                    forced = self.model.advance(mm, seconds_at(mm, self.now, final=False), None)
                    if forced:
                        self.notices.append((mm.resource, forced))
            case "stop":
                metering.stop(self.tid, mm.id, "user", at=when(self.now))
                if mm.running:
                    self.model.advance(mm, seconds_at(mm, self.now, final=True), "user")

    # --- the commands, next to the model ------------------------------------------------------

    def deposit(self, amount: int) -> None:
        wallet.adjust(self.tid, amount, "credit", "staff:test")
        self.model.available += amount

    def debit(self, amount: int) -> None:
        if amount <= 0:
            return
        refused = amount > self.model.available
        try:
            wallet.adjust(self.tid, -amount, "debit", "staff:test")
        except InsufficientFunds:
            assert refused
            return
        assert not refused
        self.model.available -= amount

    def buy_hours(self, spec: str, hours: int) -> None:
        amount = hours * self.specs[spec].price_per_hour
        refused = amount > self.model.available
        try:
            wallet.buy_prepaid_hours(self.tid, self.specs[spec], hours)
        except InsufficientFunds:
            assert refused
            return
        assert not refused
        self.model.available -= amount
        pool = self.model.hours.setdefault(spec, [0, 0])
        pool[0] += hours * 3600
        pool[1] += amount

    def reprice(self, spec: str, price: int) -> None:
        """Staff change a spec's price: running meters keep the price of their start."""
        self.specs[spec].price_per_hour = price
        self.specs[spec].save(update_fields=["price_per_hour"])

    def heartbeat(self, mm: MeterModel) -> None:
        metering.heartbeat(mm.id, at=when(self.now))
        mm.last_seen_us = self.now

    def settle_running(self) -> None:
        run = metering.settle_running(at=when(self.now), tenant_ids=[self.tid])
        expected = Counter()
        timeout = django_settings.BILLING_LEASE_TIMEOUT_S * US
        running = sorted((m for m in self.model.meters.values() if m.running),
                         key=lambda m: (m.start_us, m.id))
        for mm in running:
            if self.now - mm.last_seen_us > timeout:
                self.model.advance(mm, seconds_at(mm, mm.last_seen_us, final=True),
                                   metering.VANISHED)
                expected["vanished"] += 1
                self.notices.append((mm.resource, metering.VANISHED))
            elif forced := self.model.advance(mm, seconds_at(mm, self.now, final=False), None):
                expected["stopped_short"] += 1
                self.notices.append((mm.resource, forced))
            else:
                expected["settled"] += 1
        assert (run.settled, run.stopped_short, run.vanished) == (
            expected["settled"], expected["stopped_short"], expected["vanished"])

    # --- after every step -------------------------------------------------------------------

    @invariant()
    def books_match_the_model(self) -> None:
        if not Wallet.objects.for_tenant(self.tid).exists():
            return  # before the initial rule
        seen = assert_books_balance(self.tid)
        w, m = seen["wallet"], self.model
        assert (w.available, w.frozen, w.prepaid_fallback_to_postpaid) == (
            m.available, m.frozen, m.fallback)
        if w.available < 0:
            assert seen["negative_by"], "available is negative without a usage charge"
        for mm in m.meters.values():
            row = seen["meters"][mm.id]
            assert (row.state == Meter.RUNNING, row.stop_reason, row.settled_seconds,
                    row.charged, row.frozen, row.prepaid_seconds, row.prepaid_value,
                    row.postpaid_from_seconds, row.price_per_hour) == (
                mm.running, mm.reason, mm.settled, mm.charged, mm.frozen, mm.prepaid_seconds,
                mm.prepaid_value, mm.postpaid_from, mm.price), mm
        assert len(seen["meters"]) == len(m.meters)
        if not self.rollback:  # after commit only: inside a rolled-back savepoint, never
            assert self.notices == notified(self.tid)
        hours = {b.spec_id: (b.seconds, b.value) for b in seen["balances"]}
        for name, (seconds, value) in m.hours.items():
            assert hours.get(self.specs[name].id, (0, 0)) == (seconds, value)


class RebuildMachine(WalletMachine):
    """The same histories, committed; at the end a rebuild must give identical rows."""

    rollback = False

    def teardown(self) -> None:
        before = snapshot()
        handled = rebuild([WalletBook.name])
        assert handled[WalletBook.name] == Event.objects.filter(
            type__in=WalletBook.event_types).count(), "the rebuild did not replay every event"
        assert snapshot() == before


def snapshot() -> dict[str, list[dict]]:
    return {model._meta.label: list(model._base_manager.order_by("pk").values())
            for model in (Wallet, Meter, PrepaidBalance, LedgerEntry, Posting, UsageRecord,
                          Topup)}


FAST = settings(max_examples=100, stateful_step_count=30, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# A failure is shrunk for up to 5 minutes (hypothesis' limit): let it finish and report.
@pytest.mark.timeout(900)
@pytest.mark.django_db
def test_random_histories_keep_the_books():
    run_state_machine_as_test(WalletMachine, settings=FAST)


@pytest.mark.timeout(900)
@pytest.mark.django_db(transaction=True)
def test_rebuild_of_random_histories_gives_identical_rows():
    run_state_machine_as_test(
        RebuildMachine, settings=settings(FAST, max_examples=10))
