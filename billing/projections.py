"""Wallet events -> wallet, meters, prepaid balances, the double-entry ledger, usage, top-ups."""

from collections.abc import Sequence
from datetime import datetime

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
from eventlog import projections, rowfold
from eventlog.rowfold import Row
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

    def prepare(self, events: Sequence[RecordedEvent], rows: rowfold.Batch) -> None:
        rows[Wallet].load({e.tenant_id for e in events})
        rows[Meter].load({e.data["meter_id"] for e in events
                          if "meter_id" in e.data and e.type != "MeterStarted"})
        rows[Topup].load({e.data["topup_id"] for e in events
                          if "topup_id" in e.data and e.type != "TopupCreated"})
        rows[PrepaidBalance].load({_prepaid_key(e.tenant_id, e.data["spec_id"]) for e in events
                                   if e.type in _PREPAID})

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        data, tenant = event.data, event.tenant_id
        if event.type == "WalletOpened":
            rows[Wallet].create(tenant_id=tenant, currency=data["currency"],
                                version=event.version, updated_at=event.recorded_at)
            return
        wallet = rows[Wallet].get(tenant)
        changes: dict[str, object] = {"version": event.version,
                                      "updated_at": event.recorded_at}
        legs = ledger.postings_for(event.type, data)
        if legs:
            self._post(event, legs, rows)
            for account, amount in legs:
                if account in _WALLET_COLUMNS:
                    column = _WALLET_COLUMNS[account]
                    changes[column] = changes.get(column, wallet[column]) + amount
        if event.type == "WalletSettingsChanged":
            changes["prepaid_fallback_to_postpaid"] = data["prepaid_fallback_to_postpaid"]
        rows[Wallet].change(wallet, **changes)
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event, rows, wallet)

    @staticmethod
    def _post(event: RecordedEvent, legs: ledger.Postings, rows: rowfold.Batch) -> None:
        rows[LedgerEntry].create(
            position=event.position, tenant_id=event.tenant_id, event_type=event.type,
            meter_id=event.data.get("meter_id"), memo=_memo(event),
            recorded_at=event.recorded_at)
        for leg, (account, amount) in enumerate(legs):
            rows[Posting].create(id=event.position * 8 + leg, entry_id=event.position,
                                 tenant_id=event.tenant_id, account=account, amount=amount,
                                 recorded_at=event.recorded_at)

    # --- top-ups ------------------------------------------------------------------------------

    def _on_TopupCreated(self, event: RecordedEvent, rows: rowfold.Batch, wallet: Row) -> None:
        data = event.data
        rows[Topup].create(id=data["topup_id"], tenant_id=event.tenant_id,
                           amount=data["amount"], currency=wallet["currency"],
                           session_id=data["session_id"], checkout_url=data["checkout_url"],
                           created_at=event.recorded_at, updated_at=event.recorded_at)

    def _on_FundsDeposited(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        rows[Topup].update(event.data["topup_id"], state=Topup.PAID,
                           payment_intent=event.data["payment_intent"],
                           updated_at=event.recorded_at)

    def _on_TopupFailed(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        rows[Topup].update(event.data["topup_id"], state=Topup.FAILED,
                           failure_reason=event.data["reason"][:300],
                           updated_at=event.recorded_at)

    def _on_FundsRefunded(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        topup = rows[Topup].get(event.data["topup_id"])
        if topup is not None:
            rows[Topup].change(topup, refunded=topup["refunded"] + event.data["amount"],
                               updated_at=event.recorded_at)

    # --- meters -------------------------------------------------------------------------------

    def _on_MeterStarted(self, event: RecordedEvent, rows: rowfold.Batch, wallet: Row) -> None:
        data = event.data
        rows[Meter].create(
            id=data["meter_id"], tenant_id=event.tenant_id, resource_type=data["resource_type"],
            resource_id=data["resource_id"], project_id=data["project_id"],
            spec_id=data["spec_id"], spec_name=data["spec_name"],
            price_per_hour=data["price_per_hour"], currency=wallet["currency"],
            mode=data["mode"], started_at=datetime.fromisoformat(data["started_at"]),
            postpaid_from_seconds=0 if data["mode"] == "postpaid" else None)

    def _on_MeterSwitchedToPostpaid(self, event: RecordedEvent, rows: rowfold.Batch,
                                    _: Row) -> None:
        rows[Meter].update(event.data["meter_id"], postpaid_from_seconds=event.data["at_seconds"])

    def _on_FundsFrozen(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        _move_meter(event, rows)

    def _on_FreezeReleased(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        _move_meter(event, rows)

    def _on_UsageCharged(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        data = event.data
        meter = _move_meter(event, rows, settled_seconds=data["until_seconds"])
        _usage(event, rows, meter, "postpaid", data["seconds"], data["amount"])

    def _on_PrepaidHoursConsumed(self, event: RecordedEvent, rows: rowfold.Batch,
                                 _: Row) -> None:
        data = event.data
        meter = _move_meter(event, rows, settled_seconds=data["until_seconds"])
        balances = rows[PrepaidBalance]
        balance = balances.get(_prepaid_key(event.tenant_id, data["spec_id"]))
        if balance is not None:
            balances.change(balance, seconds=balance["seconds"] - data["seconds"],
                            value=balance["value"] - data["value"])
        _usage(event, rows, meter, "prepaid", data["seconds"], data["value"])

    def _on_MeterStopped(self, event: RecordedEvent, rows: rowfold.Batch, _: Row) -> None:
        data = event.data
        rows[Meter].update(data["meter_id"], state=Meter.STOPPED, stop_reason=data["reason"],
                           stopped_at=datetime.fromisoformat(data["stopped_at"]),
                           settled_seconds=data["seconds"])

    # --- prepaid ------------------------------------------------------------------------------

    def _on_PrepaidHoursPurchased(self, event: RecordedEvent, rows: rowfold.Batch,
                                  _: Row) -> None:
        data = event.data
        balances = rows[PrepaidBalance]
        key = _prepaid_key(event.tenant_id, data["spec_id"])
        balance = balances.get(key) or balances.create(
            id=key, tenant_id=event.tenant_id, spec_id=data["spec_id"],
            spec_name=data["spec_name"])
        balances.change(balance, seconds=balance["seconds"] + data["seconds"],
                        value=balance["value"] + data["amount"])


_PREPAID = frozenset({"PrepaidHoursPurchased", "PrepaidHoursConsumed"})
# How money events move their meter's columns: (column, data key, sign).
_METER_MOVES = {
    "FundsFrozen": (("frozen", "amount", 1),),
    "FreezeReleased": (("frozen", "amount", -1),),
    "UsageCharged": (("frozen", "from_frozen", -1), ("charged", "amount", 1)),
    "PrepaidHoursConsumed": (("prepaid_seconds", "seconds", 1), ("prepaid_value", "value", 1)),
}


def _move_meter(event: RecordedEvent, rows: rowfold.Batch, **values: object) -> Row | None:
    meter = rows[Meter].get(event.data["meter_id"])
    if meter is not None:
        for column, key, sign in _METER_MOVES[event.type]:
            values[column] = meter[column] + sign * event.data[key]
        rows[Meter].change(meter, **values)
    return meter


def _usage(event: RecordedEvent, rows: rowfold.Batch, meter: Row | None, kind: str,
           seconds: int, amount: int) -> None:
    if meter is None:
        raise Meter.DoesNotExist(f"meter {event.data['meter_id']} of a {event.type}")
    rows[UsageRecord].create(
        position=event.position, tenant_id=event.tenant_id, meter_id=meter["id"],
        resource_type=meter["resource_type"], resource_id=meter["resource_id"],
        project_id=meter["project_id"], spec_name=meter["spec_name"], kind=kind,
        seconds=seconds, amount=amount, recorded_at=event.recorded_at)


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
