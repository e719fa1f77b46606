"""Finance reports on a generated two-month history: every figure reconciles with the ledger.

The history is random but seeded: two tenants fund their wallets (adjustments, simulated
Stripe deposits and refunds), buy prepaid hours and run postpaid and prepaid meters that are
settled every three hours, stopped, run short or vanish, from 26 February to 3 March 2026.
The event log's clock follows the history, so usage lands on the days and months it happened.
"""

import csv
import io
import itertools
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from accounts.models import User
from billing import api as billing
from billing import ledger, reports, wallet
from billing.events import FundsDeposited, FundsRefunded
from billing.models import ComputeSpec, LedgerEntry, Meter, Posting, PrepaidBalance
from core.errors import InsufficientFunds
from tests.conftest import Account, Api, add_member, sign_up

START = datetime(2026, 2, 26, 0, 0, tzinfo=UTC)
FEB = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
MAR = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
GROUPINGS = ("resource", "project", "spec", "day", "month")
USAGE_EVENTS = {"UsageCharged", "PrepaidHoursConsumed"}
USAGE, LEDGER, STATEMENTS = ("/api/v1/billing/usage/", "/api/v1/billing/ledger/",
                             "/api/v1/billing/statements/")
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


class Clock:
    """The event log's clock: `recorded_at` of every append is `now`."""

    def __init__(self) -> None:
        self.now = START


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr("eventlog.store.timezone", SimpleNamespace(now=lambda: fixed.now))
    return fixed


@dataclass
class History:
    a: Account
    b: Account
    project_of_a: str
    end: datetime


def _deposit(tenant_id: str, amount: int, n: int) -> None:
    """A paid Stripe top-up, as the webhook would record it."""
    wallet.with_wallet(tenant_id, lambda w: w.append(FundsDeposited(
        amount=amount, source="stripe", topup_id=str(uuid.uuid4()), reference=f"cs_test_{n}",
        payment_intent=f"pi_test_{n}")))


def _refund(tenant_id: str, amount: int, n: int) -> None:
    wallet.with_wallet(tenant_id, lambda w: w.append(FundsRefunded(
        amount=amount, topup_id=str(uuid.uuid4()), reference=f"ch_test_{n}")))


SETTLE_EVERY = timedelta(hours=3)


def _scheduler_pass(rng: random.Random, clock: Clock, moment: datetime,
                    tenants: list[tuple[str, str | None]], cheap: ComputeSpec,
                    n: Iterator[int]) -> None:
    """What the scheduler does every SETTLE_EVERY: heartbeats arrive (a few are lost, so
    their runs vanish), every running meter is settled; each tenant keeps one run going."""
    clock.now = moment
    for tenant_id, _ in tenants:
        for meter in Meter.objects.for_tenant(tenant_id).filter(state=Meter.RUNNING):
            if rng.random() < 0.97:
                billing.heartbeat(meter.id, at=moment)
    billing.settle_running(at=moment)
    for tenant_id, project in tenants:
        if not Meter.objects.for_tenant(tenant_id).filter(state=Meter.RUNNING).exists():
            if wallet.view(tenant_id).available < 2 * cheap.price_per_hour:
                _deposit(tenant_id, 20_000, next(n))
            billing.start(tenant_id, resource_type="task", resource_id=f"keep{next(n)}",
                          spec=cheap, mode="postpaid", project_id=project, at=moment)


def generate(seed: int, clock: Clock, tenants: list[tuple[str, str | None]],
             specs: list[ComputeSpec], until: datetime = datetime(2026, 3, 3, 6, tzinfo=UTC)
             ) -> datetime:
    """Run a seeded random history through the billing core; returns the time after it."""
    rng = random.Random(seed)
    n = itertools.count()
    moment = START
    for tenant_id, _ in tenants:  # every kind of movement happens at least once
        _deposit(tenant_id, 60_000, next(n))
        wallet.adjust(tenant_id, 5_000, "welcome credit", "staff:test")
        wallet.buy_prepaid_hours(tenant_id, specs[0], 1)
        _refund(tenant_id, 1_000, next(n))
    actions = ["deposit", "adjust", "debit", "refund", "prepaid", "fallback", "start", "start",
               "start", "stop", "stop", "stop"]
    checkpoint = START + SETTLE_EVERY
    while moment < until:
        moment += timedelta(seconds=rng.randint(600, 3 * 3600))
        while checkpoint <= moment:
            _scheduler_pass(rng, clock, checkpoint, tenants, specs[-1], n)
            checkpoint += SETTLE_EVERY
        clock.now = moment
        for tenant_id, project in tenants:
            running = list(Meter.objects.for_tenant(tenant_id).filter(state=Meter.RUNNING)
                           .order_by("started_at", "id"))
            available = wallet.view(tenant_id).available
            try:
                match rng.choice(actions):
                    case "deposit":
                        _deposit(tenant_id, rng.randint(5_000, 60_000), next(n))
                    case "adjust":
                        wallet.adjust(tenant_id, rng.randint(100, 9_000), "goodwill",
                                      "staff:test")
                    case "debit":
                        wallet.adjust(tenant_id, -rng.randint(100, 3_000), "correction",
                                      "staff:test")
                    case "refund" if available > 500:
                        _refund(tenant_id, rng.randint(1, min(available, 8_000)), next(n))
                    case "prepaid":
                        wallet.buy_prepaid_hours(tenant_id, rng.choice(specs),
                                                 rng.randint(1, 3))
                    case "fallback":
                        wallet.set_prepaid_fallback(tenant_id, rng.random() < 0.7)
                    case "start":
                        billing.start(tenant_id, resource_type=rng.choice(["task", "service"]),
                                      resource_id=f"r{next(n)}", spec=rng.choice(specs),
                                      mode=rng.choice(billing.MODES),
                                      project_id=project if rng.random() < 0.6 else None,
                                      at=moment)
                    case "stop" if running:
                        billing.stop(tenant_id, rng.choice(running).id, at=moment)
            except InsufficientFunds:
                pass
    moment += timedelta(minutes=37)
    clock.now = moment
    for tenant_id, _ in tenants:
        for meter in Meter.objects.for_tenant(tenant_id).filter(state=Meter.RUNNING):
            billing.stop(tenant_id, meter.id, at=moment)
    clock.now = moment + timedelta(minutes=1)
    return clock.now


@pytest.fixture
def history(request: pytest.FixtureRequest, api: Api, tenant_a: Account, tenant_b: Account,
            project_of_a: dict, gpu: ComputeSpec, cpu: ComputeSpec, clock: Clock) -> History:
    seed = getattr(request, "param", 7)
    end = generate(seed, clock, [(tenant_a.tenant_id, project_of_a["id"]),
                                 (tenant_b.tenant_id, None)], [gpu, cpu])
    return History(tenant_a, tenant_b, project_of_a["id"], end)


# --- the ledger, read independently of billing.reports -------------------------------------------


class Books:
    """A tenant's postings, read once, straight from the table."""

    def __init__(self, tenant_id: str):
        self.postings = list(Posting.objects.for_tenant(tenant_id).select_related("entry"))

    def revenue(self, start: datetime, end: datetime,
                event_types: set[str] = USAGE_EVENTS) -> int:
        return sum(p.amount for p in self.postings
                   if p.account == ledger.REVENUE and p.entry.event_type in event_types
                   and start <= p.recorded_at < end)

    def balance_before(self, moment: datetime, accounts: tuple[str, ...]) -> int:
        return sum(p.amount for p in self.postings
                   if p.account in accounts and p.recorded_at < moment)

    def moved(self, start: datetime, end: datetime, event_type: str, account: str) -> int:
        return sum(p.amount for p in self.postings
                   if p.entry.event_type == event_type and p.account == account
                   and start <= p.recorded_at < end)


def usage_revenue(tenant_id: str, start: datetime, end: datetime) -> int:
    return Books(tenant_id).revenue(start, end)


def get_ok(client: Api, path: str, **params: str) -> dict:
    response = client.get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = (b"".join(response.streaming_content) if response.streaming else response.content)
    return list(csv.DictReader(io.StringIO(body.decode())))


def error_of(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    if field is not None:
        assert field in error["fields"], error
    return error


# --- usage ---------------------------------------------------------------------------------------

PERIODS = {  # query -> the half-open interval it means
    "all": ({}, EVERYTHING),
    "february by dates": ({"from": "2026-02-01", "to": "2026-02-28"}, FEB),
    "march by datetimes": ({"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}, MAR),
    "a window across the month end": (
        {"from": "2026-02-28T06:30:00Z", "to": "2026-03-02T18:00:00+00:00"},
        (datetime(2026, 2, 28, 6, 30, tzinfo=UTC), datetime(2026, 3, 2, 18, tzinfo=UTC))),
}


@pytest.mark.parametrize("history", [7, 31337], indirect=True)
def test_usage_grouped_each_way_sums_to_the_ledger_revenue(api, history):
    client = api.as_(history.a)
    books = Books(history.a.tenant_id)
    for name, (query, (start, end)) in PERIODS.items():
        revenue = books.revenue(start, end)
        postpaid = books.revenue(start, end, {"UsageCharged"})
        for group_by in GROUPINGS:
            body = get_ok(client, USAGE, group_by=group_by, **query)
            rows = body["results"]
            assert body["currency"] == "USD"
            assert sum(row["amount"] for row in rows) == body["total"] == revenue, (name, group_by)
            assert reports.revenue([history.a.tenant_id], start, end) == revenue
            assert sum(row["postpaid_amount"] for row in rows) == postpaid, (name, group_by)
            assert sum(row["seconds"] for row in rows) == body["seconds"], (name, group_by)
            assert [row["key"] for row in rows] == sorted({row["key"] for row in rows})
            assert all(row["amount"] > 0 or row["seconds"] > 0 for row in rows)
        assert len({get_ok(client, USAGE, group_by=g, **query)["seconds"]
                    for g in GROUPINGS}) == 1, name
    assert books.revenue(*FEB) > 0 and books.revenue(*MAR) > 0


@pytest.mark.parametrize("history", [2026], indirect=True)
def test_usage_rows_match_meters_projects_days_and_months(api, history):
    client = api.as_(history.a)
    tenant = history.a.tenant_id
    by_resource = {row["key"]: row for row in get_ok(client, USAGE, group_by="resource")["results"]}
    meters = Meter.objects.for_tenant(tenant)
    expected = defaultdict(lambda: [0, 0, 0])
    for meter in meters:
        key = f"{meter.resource_type}:{meter.resource_id}"
        expected[key][0] += meter.charged + meter.prepaid_value
        expected[key][1] += meter.charged
        expected[key][2] += meter.prepaid_seconds
    assert {k: [r["amount"], r["postpaid_amount"], r["prepaid_seconds"]]
            for k, r in by_resource.items()} == {k: v for k, v in expected.items() if any(v)}

    by_project = {row["key"]: row["amount"]
                  for row in get_ok(client, USAGE, group_by="project")["results"]}
    assert set(by_project) <= {history.project_of_a, "none"}
    assert by_project.get(history.project_of_a, 0) == sum(
        m.charged + m.prepaid_value for m in meters if str(m.project_id) == history.project_of_a)

    books = Books(tenant)
    by_month = {row["key"]: row["amount"]
                for row in get_ok(client, USAGE, group_by="month")["results"]}
    assert by_month == {"2026-02": books.revenue(*FEB), "2026-03": books.revenue(*MAR)}

    by_day = {row["key"]: row["amount"]
              for row in get_ok(client, USAGE, group_by="day")["results"]}
    assert len(by_day) >= 5 and "2026-02-28" in by_day and "2026-03-01" in by_day
    for key, amount in by_day.items():
        day = datetime.fromisoformat(key).replace(tzinfo=UTC)
        assert amount == books.revenue(day, day + timedelta(days=1)), key

    by_spec = {row["key"] for row in get_ok(client, USAGE, group_by="spec")["results"]}
    assert by_spec <= {"test-gpu", "test-cpu"}


# --- statements ----------------------------------------------------------------------------------


@pytest.mark.parametrize("history", [7, 31337], indirect=True)
def test_statements_reconcile_with_postings_usage_and_the_wallet(api, history):
    for who in (history.a, history.b):
        client, tenant = api.as_(who), who.tenant_id
        books = Books(tenant)
        closings = []
        for month, (start, end) in {"2026-01": (datetime(2026, 1, 1, tzinfo=UTC), FEB[0]),
                                    "2026-02": FEB, "2026-03": MAR,
                                    "2026-04": (MAR[1], datetime(2026, 5, 1, tzinfo=UTC))}.items():
            body = get_ok(client, STATEMENTS, month=month)
            balances = (ledger.AVAILABLE, ledger.FROZEN)
            assert body == {
                "tenant": tenant, "month": month, "currency": "USD",
                "opening_balance": books.balance_before(start, balances),
                "topups": -books.moved(start, end, "FundsDeposited", ledger.CLEARING),
                "charges": books.moved(start, end, "UsageCharged", ledger.REVENUE),
                "prepaid_purchases": books.moved(start, end, "PrepaidHoursPurchased",
                                           ledger.PREPAID),
                "adjustments": books.moved(start, end, "BalanceAdjusted", ledger.AVAILABLE),
                "refunds": -books.moved(start, end, "FundsRefunded", ledger.AVAILABLE),
                "closing_balance": books.balance_before(end, balances),
                "prepaid_consumed": books.moved(start, end, "PrepaidHoursConsumed",
                                          ledger.REVENUE),
                "prepaid_opening": books.balance_before(start, (ledger.PREPAID,)),
                "prepaid_closing": books.balance_before(end, (ledger.PREPAID,)),
                "reconciles": True}
            assert body["closing_balance"] == (
                body["opening_balance"] + body["topups"] - body["charges"]
                - body["prepaid_purchases"] + body["adjustments"] - body["refunds"])
            assert body["prepaid_closing"] == (body["prepaid_opening"]
                                               + body["prepaid_purchases"]
                                               - body["prepaid_consumed"])
            usage = get_ok(client, USAGE, group_by="spec", **{"from": f"{month}-01"},
                           to=end.date().isoformat() + "T00:00:00Z")
            assert usage["total"] == body["charges"] + body["prepaid_consumed"], month
            if closings:
                assert body["opening_balance"] == closings[-1]
            closings.append(body["closing_balance"])
        assert closings[0] == 0  # nothing happened in January
        assert closings[-1] == wallet.view(tenant).balance
        assert body["prepaid_closing"] == sum(
            PrepaidBalance.objects.for_tenant(tenant).values_list("value", flat=True))
        feb = get_ok(client, STATEMENTS, month="2026-02")
        assert all(feb[line] for line in ("topups", "charges", "prepaid_purchases",
                                          "adjustments", "refunds"))


def test_a_tenant_without_a_wallet_has_an_empty_statement(api, tenant_a):
    body = get_ok(api.as_(tenant_a), STATEMENTS, month="2026-03")
    assert body["opening_balance"] == body["closing_balance"] == body["charges"] == 0
    assert body["reconciles"] is True


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_exports_carry_the_same_numbers(api, history):
    client = api.as_(history.a)
    for group_by in GROUPINGS:
        query = {"group_by": group_by, "from": "2026-02-27"}
        body = get_ok(client, USAGE, **query)
        rows = csv_rows(client.get(USAGE, {**query, "format": "csv"}))
        assert [(r["key"], int(r["seconds"]), int(r["amount"]), int(r["postpaid_amount"]),
                 int(r["prepaid_seconds"]), r["currency"]) for r in rows] == [
            (r["key"], r["seconds"], r["amount"], r["postpaid_amount"], r["prepaid_seconds"],
             "USD") for r in body["results"]]

    statement = get_ok(client, STATEMENTS, month="2026-03")
    rows = csv_rows(client.get(STATEMENTS, {"month": "2026-03", "format": "csv"}))
    assert {r["line"]: int(r["amount"]) for r in rows} == {
        k: v for k, v in statement.items() if k not in {"tenant", "month", "currency",
                                                        "reconciles"}}
    assert {(r["tenant"], r["month"], r["currency"]) for r in rows} == {
        (history.a.tenant_id, "2026-03", "USD")}

    rows = csv_rows(client.get(LEDGER, {"format": "csv"}))
    per_account = Counter()
    for row in rows:
        per_account[row["account"]] += int(row["amount"])
    expected = Counter()
    for posting in Posting.objects.for_tenant(history.a.tenant_id):
        expected[posting.account] += posting.amount
    assert per_account == expected
    assert len({row["position"] for row in rows}) == LedgerEntry.objects.for_tenant(
        history.a.tenant_id).count()
    assert {row["tenant"] for row in rows} == {history.a.tenant_id}


# --- the ledger ----------------------------------------------------------------------------------


def test_the_ledger_lists_balanced_entries_newest_first_page_by_page(api, history):
    client = api.as_(history.a)
    page = get_ok(client, LEDGER, limit="7")
    entries = list(page["results"])
    while page["next"]:
        response = client.get(page["next"])
        assert response.status_code == 200, response.content
        page = response.json()
        entries += page["results"]
    positions = [entry["position"] for entry in entries]
    assert positions == sorted(positions, reverse=True)
    assert positions == list(LedgerEntry.objects.for_tenant(history.a.tenant_id)
                             .order_by("-position").values_list("position", flat=True))
    assert all(sum(p["amount"] for p in e["postings"]) == 0 and e["postings"] for e in entries)
    assert {e["tenant_id"] for e in entries} == {history.a.tenant_id}


def test_the_ledger_filters_by_account_type_and_period(api, history):
    client = api.as_(history.a)
    prepaid = get_ok(client, LEDGER, account="tenant:prepaid", limit="1000")["results"]
    assert prepaid and all(any(p["account"] == "tenant:prepaid" for p in e["postings"])
                           for e in prepaid)
    assert {e["event_type"] for e in prepaid} == {"PrepaidHoursPurchased",
                                                  "PrepaidHoursConsumed"}
    rows = csv_rows(client.get(LEDGER, {"account": "tenant:prepaid", "format": "csv"}))
    assert {int(row["position"]) for row in rows} == {e["position"] for e in prepaid}
    charged = get_ok(client, LEDGER, event_type="UsageCharged", limit="1000")["results"]
    assert charged and {e["event_type"] for e in charged} == {"UsageCharged"}
    march = get_ok(client, LEDGER, **{"from": "2026-03-01", "to": "2026-03-31",
                                      "limit": "1000"})["results"]
    assert march and all(e["recorded_at"].startswith("2026-03") for e in march)
    assert len(march) == len([e for e in LedgerEntry.objects.for_tenant(history.a.tenant_id)
                              if MAR[0] <= e.recorded_at < MAR[1]])


# --- who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [("finance", 200), ("admin", 200), ("owner", 200),
                                          ("developer", 403), ("viewer", 403)])
def test_finance_roles_see_reports_and_others_are_refused(api, tenant_a, role, status):
    who = tenant_a if role == "owner" else add_member(api, tenant_a, role)
    for path, query in ((USAGE, {}), (USAGE, {"format": "csv"}), (LEDGER, {}),
                        (STATEMENTS, {"month": "2026-03"})):
        response = api.as_(who).get(path, query)
        assert response.status_code == status, (path, response.content)
        if status == 403:
            assert response.json()["error"]["code"] == "permission_denied"


def test_a_tenant_never_sees_another_tenants_money(api, history):
    a, b = history.a, history.b
    client = api.as_(b)
    assert get_ok(client, USAGE)["total"] == usage_revenue(b.tenant_id, *EVERYTHING)
    assert usage_revenue(a.tenant_id, *EVERYTHING) > 0
    own = {e.position for e in LedgerEntry.objects.for_tenant(b.tenant_id)}
    listed = {e["position"] for e in get_ok(client, LEDGER, limit="1000")["results"]}
    assert listed == own
    for path, query in ((USAGE, {}), (LEDGER, {}), (STATEMENTS, {"month": "2026-03"}),
                        (USAGE, {"format": "csv"})):
        error_of(client.get(path, {**query, "tenant": a.tenant_id}), 404)
        error_of(client.get(path, {**query, "tenant": "all"}), 404)
    assert get_ok(client, USAGE, tenant=b.tenant_id)["total"] == get_ok(client, USAGE)["total"]
    error = error_of(client.get(USAGE, {"group_by": "tenant"}), 403)
    assert error["code"] == "permission_denied"


def test_platform_staff_see_every_tenant(api, history):
    a, b = history.a, history.b
    staff = sign_up(api, tenant="Platform")
    User.objects.filter(pk=staff.user_id).update(is_staff=True, is_superuser=True)
    client = api.as_(staff)

    across = get_ok(client, USAGE, group_by="tenant", tenant="all")
    assert {row["key"]: row["amount"] for row in across["results"]} == {
        a.tenant_id: usage_revenue(a.tenant_id, *EVERYTHING),
        b.tenant_id: usage_revenue(b.tenant_id, *EVERYTHING)}
    for group_by in GROUPINGS:
        query = {"group_by": group_by, "from": "2026-03-01"}
        assert (get_ok(client, USAGE, tenant=a.tenant_id, **query)
                == get_ok(api.as_(a), USAGE, **query))
    assert (get_ok(client, STATEMENTS, tenant=b.tenant_id, month="2026-02")
            == get_ok(api.as_(b), STATEMENTS, month="2026-02"))
    listed = {e["tenant_id"] for e in get_ok(client, LEDGER, tenant="all",
                                             limit="1000")["results"]}
    assert listed == {a.tenant_id, b.tenant_id}
    rows = csv_rows(client.get(USAGE, {"group_by": "tenant", "tenant": "all", "format": "csv"}))
    assert sorted(r["key"] for r in rows) == sorted([a.tenant_id, b.tenant_id])

    error_of(client.get(STATEMENTS, {"month": "2026-02", "tenant": "all"}), 400, "tenant")
    error_of(client.get(USAGE, {"tenant": "acme"}), 400, "tenant")
    error_of(client.get(USAGE, {"tenant": str(uuid.uuid4())}), 404)

    # Staff-ness, not the role in the tenant the token is for, opens the reports.
    viewer = add_member(api, b, "viewer")
    User.objects.filter(pk=viewer.user_id).update(is_staff=True)
    assert get_ok(api.as_(viewer), USAGE, tenant=a.tenant_id)["total"] == usage_revenue(
        a.tenant_id, *EVERYTHING)


# --- bad queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path, query, field", [
    (USAGE, {"group_by": "week"}, "group_by"),
    (USAGE, {"from": "yesterday"}, "from"),
    (USAGE, {"to": "2026-02-30"}, "to"),
    (USAGE, {"from": "2026-03-02", "to": "2026-03-01T00:00:00Z"}, "to"),
    (USAGE, {"group_by": "week", "format": "csv"}, "group_by"),
    (STATEMENTS, {}, "month"),
    (STATEMENTS, {"month": "2026-13"}, "month"),
    (STATEMENTS, {"month": "March", "format": "csv"}, "month"),
    (LEDGER, {"account": "tenant:savings"}, "account"),
    (LEDGER, {"event_type": "TaskStarted"}, "event_type"),
    (LEDGER, {"from": "2026-03-01T25:00:00Z"}, "from"),
])
def test_bad_query_parameters_are_400_naming_the_parameter(api, tenant_a, path, query, field):
    error = error_of(api.as_(tenant_a).get(path, query), 400, field)
    assert error["code"] == "invalid"
