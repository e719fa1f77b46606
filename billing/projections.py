"""Wallet events -> wallet, meters, prepaid balances, the double-entry ledger, usage, top-ups."""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import F

from billing import ledger
from billing.models import (
    LedgerEntry,
    Meter,
    Posting,
    PrepaidBalance,
    Topup,
    UsageRecord,
    Wallet,
)
from eventlog import projections
from eventlog.store import RecordedEvent

# How each account moves the wallet's columns.
_WALLET_COLUMNS = {ledger.AVAILABLE: "available", ledger.FROZEN: "frozen"}


def _prepaid_key(tenant_id: object, spec_id: object) -> str:
    return f"{tenant_id}:{spec_id}"


class WalletBook(projections.Projection):
    """Everything the wallet stream feeds; one projection, since its rows change together."""

    name = "billing.wallet"
    event_types = {"WalletOpened", "WalletSettingsChanged", "FundsDeposited", "FundsRefunded",
                   "BalanceAdjusted", "TopupCreated", "TopupFailed", "MeterStarted",
                   "MeterSwitchedToPostpaid", "FundsFrozen", "FreezeReleased", "UsageCharged",
                   "PrepaidHoursPurchased", "PrepaidHoursConsumed", "MeterStopped"}
    models = [Wallet, Meter, PrepaidBalance, LedgerEntry, Posting, UsageRecord, Topup]

    def handle(self, event: RecordedEvent) -> None:
        data, tenant = event.data, event.tenant_id
        if event.type == "WalletOpened":
            Wallet.objects.create(tenant_id=tenant, currency=data["currency"],
                                  version=event.version, updated_at=event.recorded_at)
            return
        wallet_changes: dict[str, object] = {"version": event.version,
                                             "updated_at": event.recorded_at}
        legs = ledger.postings_for(event.type, data)
        if legs:
            self._post(event, legs)
            for account, amount in legs:
                if account in _WALLET_COLUMNS:
                    column = _WALLET_COLUMNS[account]
                    wallet_changes[column] = F(column) + amount
        if event.type == "WalletSettingsChanged":
            wallet_changes["prepaid_fallback_to_postpaid"] = data["prepaid_fallback_to_postpaid"]
        Wallet.objects.unscoped().filter(tenant_id=tenant).update(**wallet_changes)
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        """Settlement-sized appends in a few statements: runs of money events on existing
        meters are summed per wallet and per meter, the rest is handled one by one."""
        run: list[RecordedEvent] = []
        for event in events:
            if event.type in _BATCHED:
                run.append(event)
                continue
            _MoneyRun(run).write()
            run = []
            self.handle(event)
        _MoneyRun(run).write()

    def _post(self, event: RecordedEvent, legs: ledger.Postings) -> None:
        LedgerEntry.objects.create(
            position=event.position, tenant_id=event.tenant_id, event_type=event.type,
            meter_id=event.data.get("meter_id"), memo=_memo(event),
            recorded_at=event.recorded_at)
        Posting.objects.bulk_create(
            Posting(id=event.position * 8 + leg, entry_id=event.position,
                    tenant_id=event.tenant_id, account=account, amount=amount,
                    recorded_at=event.recorded_at)
            for leg, (account, amount) in enumerate(legs))

    # --- top-ups ------------------------------------------------------------------------------

    def _on_TopupCreated(self, event: RecordedEvent) -> None:
        data = event.data
        wallet = Wallet.objects.unscoped().get(tenant_id=event.tenant_id)
        Topup.objects.create(id=data["topup_id"], tenant_id=event.tenant_id,
                             amount=data["amount"], currency=wallet.currency,
                             session_id=data["session_id"], checkout_url=data["checkout_url"],
                             created_at=event.recorded_at, updated_at=event.recorded_at)

    def _on_FundsDeposited(self, event: RecordedEvent) -> None:
        Topup.objects.unscoped().filter(id=event.data["topup_id"]).update(
            state=Topup.PAID, payment_intent=event.data["payment_intent"],
            updated_at=event.recorded_at)

    def _on_TopupFailed(self, event: RecordedEvent) -> None:
        Topup.objects.unscoped().filter(id=event.data["topup_id"]).update(
            state=Topup.FAILED, failure_reason=event.data["reason"][:300],
            updated_at=event.recorded_at)

    def _on_FundsRefunded(self, event: RecordedEvent) -> None:
        Topup.objects.unscoped().filter(id=event.data["topup_id"]).update(
            refunded=F("refunded") + event.data["amount"], updated_at=event.recorded_at)

    # --- meters -------------------------------------------------------------------------------

    def _on_MeterStarted(self, event: RecordedEvent) -> None:
        data = event.data
        wallet = Wallet.objects.unscoped().get(tenant_id=event.tenant_id)
        Meter.objects.create(
            id=data["meter_id"], tenant_id=event.tenant_id, resource_type=data["resource_type"],
            resource_id=data["resource_id"], project_id=data["project_id"],
            spec_id=data["spec_id"], spec_name=data["spec_name"],
            price_per_hour=data["price_per_hour"], currency=wallet.currency, mode=data["mode"],
            started_at=datetime.fromisoformat(data["started_at"]),
            postpaid_from_seconds=0 if data["mode"] == "postpaid" else None)

    def _meter(self, event: RecordedEvent):  # noqa: ANN202
        return Meter.objects.unscoped().filter(id=event.data["meter_id"])

    def _on_MeterSwitchedToPostpaid(self, event: RecordedEvent) -> None:
        self._meter(event).update(postpaid_from_seconds=event.data["at_seconds"])

    def _on_FundsFrozen(self, event: RecordedEvent) -> None:
        self._meter(event).update(frozen=F("frozen") + event.data["amount"])

    def _on_FreezeReleased(self, event: RecordedEvent) -> None:
        self._meter(event).update(frozen=F("frozen") - event.data["amount"])

    def _on_UsageCharged(self, event: RecordedEvent) -> None:
        data = event.data
        self._meter(event).update(frozen=F("frozen") - data["from_frozen"],
                                  charged=F("charged") + data["amount"],
                                  settled_seconds=data["until_seconds"])
        self._usage(event, "postpaid", data["seconds"], data["amount"])

    def _on_PrepaidHoursConsumed(self, event: RecordedEvent) -> None:
        data = event.data
        self._meter(event).update(prepaid_seconds=F("prepaid_seconds") + data["seconds"],
                                  prepaid_value=F("prepaid_value") + data["value"],
                                  settled_seconds=data["until_seconds"])
        PrepaidBalance.objects.unscoped().filter(
            id=_prepaid_key(event.tenant_id, data["spec_id"])).update(
            seconds=F("seconds") - data["seconds"], value=F("value") - data["value"])
        self._usage(event, "prepaid", data["seconds"], data["value"])

    def _on_MeterStopped(self, event: RecordedEvent) -> None:
        data = event.data
        self._meter(event).update(state=Meter.STOPPED, stop_reason=data["reason"],
                                  stopped_at=datetime.fromisoformat(data["stopped_at"]),
                                  settled_seconds=data["seconds"])

    def _usage(self, event: RecordedEvent, kind: str, seconds: int, amount: int) -> None:
        _usage_record(event, self._meter(event).get(), kind, seconds, amount).save(
            force_insert=True)

    # --- prepaid ------------------------------------------------------------------------------

    def _on_PrepaidHoursPurchased(self, event: RecordedEvent) -> None:
        data = event.data
        key = _prepaid_key(event.tenant_id, data["spec_id"])
        balance, _ = PrepaidBalance.objects.unscoped().get_or_create(
            id=key, defaults={"tenant_id": event.tenant_id, "spec_id": data["spec_id"],
                              "spec_name": data["spec_name"]})
        PrepaidBalance.objects.unscoped().filter(id=balance.id).update(
            seconds=F("seconds") + data["seconds"], value=F("value") + data["amount"])


# Events that only move money on wallets and meters that already exist.
_BATCHED = frozenset({"FundsFrozen", "FreezeReleased", "UsageCharged", "PrepaidHoursConsumed"})
# How each batched event moves its meter's columns: (column, data key, sign).
_METER_MOVES = {
    "FundsFrozen": (("frozen", "amount", 1),),
    "FreezeReleased": (("frozen", "amount", -1),),
    "UsageCharged": (("frozen", "from_frozen", -1), ("charged", "amount", 1)),
    "PrepaidHoursConsumed": (("prepaid_seconds", "seconds", 1), ("prepaid_value", "value", 1)),
}


class _MoneyRun:
    """A run of batched events written with bulk statements; the same rows as `handle`."""

    def __init__(self, events: list[RecordedEvent]):
        self.events = events

    def write(self) -> None:
        if not self.events:
            return
        entries, postings, usage = [], [], []
        wallets: dict[object, dict[str, object]] = {}
        meter_ids = {event.data["meter_id"] for event in self.events}
        meters = {str(m.id): m for m in Meter.objects.unscoped().filter(id__in=meter_ids)}
        prepaid: dict[str, list[int]] = {}
        for event in self.events:
            data, legs = event.data, ledger.postings_for(event.type, event.data)
            change = wallets.setdefault(event.tenant_id, {"available": 0, "frozen": 0})
            change.update(version=event.version, updated_at=event.recorded_at)
            if legs:
                entries.append(LedgerEntry(
                    position=event.position, tenant_id=event.tenant_id, event_type=event.type,
                    meter_id=data.get("meter_id"), memo=_memo(event),
                    recorded_at=event.recorded_at))
                for leg, (account, amount) in enumerate(legs):
                    postings.append(Posting(
                        id=event.position * 8 + leg, entry_id=event.position,
                        tenant_id=event.tenant_id, account=account, amount=amount,
                        recorded_at=event.recorded_at))
                    if account in _WALLET_COLUMNS:
                        change[_WALLET_COLUMNS[account]] += amount
            meter = meters[data["meter_id"]]
            for column, key, sign in _METER_MOVES[event.type]:
                setattr(meter, column, getattr(meter, column) + sign * data[key])
            if event.type in ("UsageCharged", "PrepaidHoursConsumed"):
                meter.settled_seconds = data["until_seconds"]
                kind = "postpaid" if event.type == "UsageCharged" else "prepaid"
                amount = data["amount"] if kind == "postpaid" else data["value"]
                usage.append(_usage_record(event, meter, kind, data["seconds"], amount))
            if event.type == "PrepaidHoursConsumed":
                moved = prepaid.setdefault(_prepaid_key(event.tenant_id, data["spec_id"]),
                                           [0, 0])
                moved[0] += data["seconds"]
                moved[1] += data["value"]
        LedgerEntry.objects.bulk_create(entries)
        Posting.objects.bulk_create(postings)
        UsageRecord.objects.bulk_create(usage)
        Meter.objects.unscoped().bulk_update(list(meters.values()), [
            "frozen", "charged", "prepaid_seconds", "prepaid_value", "settled_seconds"])
        for key, (seconds, value) in prepaid.items():
            PrepaidBalance.objects.unscoped().filter(id=key).update(
                seconds=F("seconds") - seconds, value=F("value") - value)
        for tenant_id, change in wallets.items():
            Wallet.objects.unscoped().filter(tenant_id=tenant_id).update(
                available=F("available") + change.pop("available"),
                frozen=F("frozen") + change.pop("frozen"), **change)


def _usage_record(event: RecordedEvent, meter: Meter, kind: str, seconds: int,
                  amount: int) -> UsageRecord:
    return UsageRecord(
        position=event.position, tenant_id=event.tenant_id, meter_id=meter.id,
        resource_type=meter.resource_type, resource_id=meter.resource_id,
        project_id=meter.project_id, spec_name=meter.spec_name, kind=kind, seconds=seconds,
        amount=amount, recorded_at=event.recorded_at)


def _memo(event: RecordedEvent) -> str:
    data = event.data
    match event.type:
        case "FundsDeposited":
            return f"Stripe top-up {data['reference']}"
        case "FundsRefunded":
            return f"Stripe refund {data['reference']}"
        case "BalanceAdjusted":
            return f"Adjustment by {data['actor']}: {data['reason']}"[:300]
        case "PrepaidHoursPurchased":
            return f"{data['seconds'] // 3600} prepaid hours of {data['spec_name']}"
        case "UsageCharged" | "PrepaidHoursConsumed":
            return f"Usage up to {data['until_seconds']} s"
        case _:
            return ""


projections.register(WalletBook())
