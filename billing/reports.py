"""Finance reports read from the ledger projection: usage, monthly statements, the ledger.

Pure queries: no HTTP. Every figure is a sum of integer minor units over `UsageRecord` or
`Posting` rows, grouped in the database, so a report always reconciles with the ledger:

    usage total of a period  ==  platform:revenue postings of UsageCharged + PrepaidHoursConsumed
    opening + topups - charges - prepaid_purchases + adjustments - refunds  ==  closing

Periods are half-open `[start, end)` in UTC over `recorded_at`, the time the settlement was
appended to the log (the same time the ledger postings carry).
"""

import csv
import io
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from billing import ledger
from billing.models import LedgerEntry, Posting, UsageRecord, Wallet
from billing.wallet import default_currency
from core.errors import ValidationFailed

log = logging.getLogger(__name__)

GROUPS = ("resource", "project", "spec", "day", "month", "tenant")
NO_PROJECT = "none"
MONEY_EVENTS = ("FundsDeposited", "FundsRefunded", "BalanceAdjusted", "FundsFrozen",
                "FreezeReleased", "UsageCharged", "PrepaidHoursPurchased",
                "PrepaidHoursConsumed")
USAGE_EVENTS = ("UsageCharged", "PrepaidHoursConsumed")
BALANCE_ACCOUNTS = (ledger.AVAILABLE, ledger.FROZEN)

TenantIds = Sequence[object] | None  # None: every tenant (platform staff)


def _scoped(manager: object, tenant_ids: TenantIds) -> QuerySet:
    if tenant_ids is None:
        return manager.unscoped()
    if len(tenant_ids) == 1:
        return manager.for_tenant(tenant_ids[0])
    return manager.unscoped().filter(tenant_id__in=list(tenant_ids))


def _in_period(rows: QuerySet, start: datetime | None, end: datetime | None) -> QuerySet:
    if start is not None:
        rows = rows.filter(recorded_at__gte=start)
    if end is not None:
        rows = rows.filter(recorded_at__lt=end)
    return rows


def _total(rows: QuerySet, column: str = "amount") -> int:
    return int(rows.aggregate(total=Coalesce(Sum(column), 0))["total"])


def currency_of(tenant_ids: TenantIds) -> str:
    """The one currency the tenants' wallets hold (400 when they differ: pick one tenant)."""
    currencies = set(_scoped(Wallet.objects, tenant_ids).values_list("currency", flat=True)
                     .distinct())
    if len(currencies) > 1:
        raise ValidationFailed(
            f"These tenants hold different currencies ({', '.join(sorted(currencies))}); "
            "ask for one tenant at a time.", fields={"tenant": ["Mixed currencies."]})
    return currencies.pop() if currencies else default_currency()


# --- usage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    """One group of usage: seconds used and what they cost (postpaid money + prepaid value)."""

    key: str
    seconds: int
    amount: int
    postpaid_amount: int
    prepaid_seconds: int

    @property
    def prepaid_amount(self) -> int:
        return self.amount - self.postpaid_amount


@dataclass(frozen=True)
class UsageReport:
    """Usage of a period grouped one way; `total` is the sum of the rows' amounts."""

    group_by: str
    start: datetime | None
    end: datetime | None
    currency: str
    rows: list[UsageRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(row.amount for row in self.rows)

    @property
    def seconds(self) -> int:
        return sum(row.seconds for row in self.rows)


_GROUP_COLUMNS = {"resource": ("resource_type", "resource_id"), "project": ("project_id",),
                  "spec": ("spec_name",), "day": ("period",), "month": ("period",),
                  "tenant": ("tenant_id",)}


def _usage_key(group_by: str, row: dict) -> str:
    match group_by:
        case "resource":
            return f"{row['resource_type']}:{row['resource_id']}"
        case "project":
            return str(row["project_id"]) if row["project_id"] else NO_PROJECT
        case "spec":
            return row["spec_name"]
        case "day":
            return row["period"].isoformat()
        case "month":
            return f"{row['period']:%Y-%m}"
        case _:
            return str(row["tenant_id"])


def usage(tenant_ids: TenantIds, group_by: str, start: datetime | None = None,
          end: datetime | None = None) -> UsageReport:
    """Usage charged in `[start, end)`, grouped by resource, project, spec, day, month or tenant."""
    if group_by not in GROUPS:
        raise ValidationFailed(f"group_by must be one of {', '.join(GROUPS)}.",
                               fields={"group_by": [f"Not one of {', '.join(GROUPS)}."]})
    rows = _in_period(_scoped(UsageRecord.objects, tenant_ids), start, end)
    if group_by == "day":
        rows = rows.annotate(period=TruncDate("recorded_at", tzinfo=UTC))
    elif group_by == "month":
        rows = rows.annotate(period=TruncMonth("recorded_at", tzinfo=UTC))
    columns = _GROUP_COLUMNS[group_by]
    grouped = (rows.order_by().values(*columns)
               .annotate(sum_seconds=Coalesce(Sum("seconds"), 0),
                         sum_amount=Coalesce(Sum("amount"), 0),
                         sum_postpaid=Coalesce(Sum("amount", filter=Q(kind="postpaid")), 0),
                         sum_prepaid_seconds=Coalesce(Sum("seconds", filter=Q(kind="prepaid")),
                                                      0))
               .order_by(*columns))
    report_rows = [UsageRow(key=_usage_key(group_by, row), seconds=int(row["sum_seconds"]),
                            amount=int(row["sum_amount"]),
                            postpaid_amount=int(row["sum_postpaid"]),
                            prepaid_seconds=int(row["sum_prepaid_seconds"]))
                   for row in grouped]
    report_rows.sort(key=lambda row: row.key)
    return UsageReport(group_by=group_by, start=start, end=end,
                       currency=currency_of(tenant_ids), rows=report_rows)


def revenue(tenant_ids: TenantIds, start: datetime | None = None,
            end: datetime | None = None) -> int:
    """Usage revenue posted in `[start, end)`: what a usage report's total must equal."""
    postings = _in_period(_scoped(Posting.objects, tenant_ids), start, end)
    return _total(postings.filter(account=ledger.REVENUE, entry__event_type__in=USAGE_EVENTS))


# --- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """A tenant's money over one calendar month (UTC), in minor units.

    The movement lines are read from the platform side of each entry (payment clearing,
    revenue, adjustments, prepaid), the balances from the tenant side (available + frozen):
    `reconciles` says the two sides agree.
    """

    tenant_id: uuid.UUID
    year: int
    month: int
    currency: str
    opening_balance: int
    topups: int
    charges: int
    prepaid_purchases: int
    adjustments: int
    refunds: int
    closing_balance: int
    prepaid_consumed: int
    prepaid_opening: int
    prepaid_closing: int

    LINES = ("opening_balance", "topups", "charges", "prepaid_purchases", "adjustments",
             "refunds", "closing_balance", "prepaid_consumed", "prepaid_opening",
             "prepaid_closing")

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def expected_closing(self) -> int:
        """The closing balance the movement lines explain."""
        return (self.opening_balance + self.topups - self.charges - self.prepaid_purchases
                + self.adjustments - self.refunds)

    @property
    def reconciles(self) -> bool:
        return self.expected_closing == self.closing_balance

    def lines(self) -> list[tuple[str, int]]:
        """(line, amount) in statement order."""
        return [(name, getattr(self, name)) for name in self.LINES]


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    """The month as a half-open UTC interval."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def statement(tenant_id: object, year: int, month: int) -> Statement:
    """The tenant's statement of one month: balances, the movements between them, the check."""
    start, end = month_bounds(year, month)
    postings = Posting.objects.for_tenant(tenant_id)

    def balance_before(moment: datetime, accounts: Iterable[str]) -> int:
        return _total(postings.filter(account__in=list(accounts), recorded_at__lt=moment))

    in_month = {(row["entry__event_type"], row["account"]): int(row["total"]) for row in (
        postings.filter(recorded_at__gte=start, recorded_at__lt=end).order_by()
        .values("entry__event_type", "account").annotate(total=Sum("amount")))}

    def moved(event_type: str, account: str) -> int:
        return in_month.get((event_type, account), 0)

    result = Statement(
        tenant_id=uuid.UUID(str(tenant_id)), year=year, month=month,
        currency=currency_of([tenant_id]),
        opening_balance=balance_before(start, BALANCE_ACCOUNTS),
        topups=-moved("FundsDeposited", ledger.CLEARING),
        charges=moved("UsageCharged", ledger.REVENUE),
        prepaid_purchases=moved("PrepaidHoursPurchased", ledger.PREPAID),
        adjustments=-moved("BalanceAdjusted", ledger.ADJUSTMENTS),
        refunds=moved("FundsRefunded", ledger.CLEARING),
        closing_balance=balance_before(end, BALANCE_ACCOUNTS),
        prepaid_consumed=moved("PrepaidHoursConsumed", ledger.REVENUE),
        prepaid_opening=balance_before(start, [ledger.PREPAID]),
        prepaid_closing=balance_before(end, [ledger.PREPAID]))
    if not result.reconciles:
        log.error("statement %s of tenant %s does not reconcile: lines give %s, postings %s",
                  result.label, tenant_id, result.expected_closing, result.closing_balance)
    return result


# --- the ledger ----------------------------------------------------------------------------------


def ledger_entries(tenant_ids: TenantIds, *, start: datetime | None = None,
                   end: datetime | None = None, account: str | None = None,
                   event_type: str | None = None) -> QuerySet:
    """Ledger entries (postings prefetched) in `[start, end)`, touching `account`, of a type."""
    if account is not None and account not in ledger.ACCOUNTS:
        raise ValidationFailed(f"account must be one of {', '.join(ledger.ACCOUNTS)}.",
                               fields={"account": ["Unknown account."]})
    if event_type is not None and event_type not in MONEY_EVENTS:
        raise ValidationFailed(f"event_type must be one of {', '.join(MONEY_EVENTS)}.",
                               fields={"event_type": ["Not an event that moves money."]})
    entries = _in_period(_scoped(LedgerEntry.objects, tenant_ids), start, end)
    if account is not None:
        entries = entries.filter(Exists(Posting.objects.unscoped().filter(
            entry_id=OuterRef("position"), account=account)))
    if event_type is not None:
        entries = entries.filter(event_type=event_type)
    return entries.prefetch_related(
        Prefetch("postings", queryset=Posting.objects.unscoped().order_by("id")))


# --- CSV -----------------------------------------------------------------------------------------

USAGE_CSV_HEADER = ("key", "seconds", "amount", "postpaid_amount", "prepaid_seconds",
                    "currency")
STATEMENT_CSV_HEADER = ("tenant", "month", "currency", "line", "amount")
LEDGER_CSV_HEADER = ("position", "recorded_at", "tenant", "event_type", "meter_id", "memo",
                     "account", "amount")


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def usage_csv(report: UsageReport) -> str:
    """The usage rows as CSV (header first; amounts in minor units)."""
    lines = [_csv_line(USAGE_CSV_HEADER)]
    lines += [_csv_line((row.key, row.seconds, row.amount, row.postpaid_amount,
                         row.prepaid_seconds, report.currency)) for row in report.rows]
    return "".join(lines)


def statement_csv(result: Statement) -> str:
    """The statement as CSV, one line per figure (header first; amounts in minor units)."""
    lines = [_csv_line(STATEMENT_CSV_HEADER)]
    lines += [_csv_line((result.tenant_id, result.label, result.currency, name, amount))
              for name, amount in result.lines()]
    return "".join(lines)


def ledger_csv(entries: QuerySet) -> Iterator[str]:
    """The entries as CSV, one line per posting, streamed (header first)."""
    yield _csv_line(LEDGER_CSV_HEADER)
    postings = (Posting.objects.unscoped()
                .filter(entry_id__in=entries.order_by().values("position"))
                .select_related("entry").order_by("entry_id", "id"))
    for posting in postings.iterator(chunk_size=2000):
        entry = posting.entry
        yield _csv_line((entry.position, entry.recorded_at.isoformat(), entry.tenant_id,
                         entry.event_type, entry.meter_id or "", entry.memo, posting.account,
                         posting.amount))
