"""Events of the wallet stream (one per tenant; its stream id is the tenant id).

Amounts are integer minor units in the wallet's currency; times are ISO 8601 UTC strings. The
usage meters (one per running task, evaluation or service) live on the wallet stream too, so
that a freeze and the balance it draws on change in one append with one expected version.
"""

from dataclasses import dataclass

from eventlog.schema import event


@event("WalletOpened")
@dataclass(frozen=True)
class WalletOpened:
    currency: str


@event("WalletSettingsChanged")
@dataclass(frozen=True)
class WalletSettingsChanged:
    prepaid_fallback_to_postpaid: bool


@event("FundsDeposited")
@dataclass(frozen=True)
class FundsDeposited:
    amount: int
    source: str  # "stripe"
    topup_id: str
    reference: str  # the Stripe Checkout Session id
    payment_intent: str


@event("FundsRefunded")
@dataclass(frozen=True)
class FundsRefunded:
    amount: int
    topup_id: str
    reference: str  # the Stripe charge id


@event("BalanceAdjusted")
@dataclass(frozen=True)
class BalanceAdjusted:
    amount: int  # positive: credit, negative: debit
    reason: str
    actor: str


@event("TopupCreated")
@dataclass(frozen=True)
class TopupCreated:
    topup_id: str
    amount: int
    session_id: str
    checkout_url: str


@event("TopupFailed")
@dataclass(frozen=True)
class TopupFailed:
    topup_id: str
    reason: str


@event("MeterStarted")
@dataclass(frozen=True)
class MeterStarted:
    meter_id: str
    resource_type: str
    resource_id: str
    project_id: str | None
    spec_id: str
    spec_name: str
    price_per_hour: int
    mode: str  # "postpaid" | "prepaid"
    started_at: str


@event("MeterSwitchedToPostpaid")
@dataclass(frozen=True)
class MeterSwitchedToPostpaid:
    meter_id: str
    at_seconds: int


@event("FundsFrozen")
@dataclass(frozen=True)
class FundsFrozen:
    meter_id: str
    amount: int


@event("FreezeReleased")
@dataclass(frozen=True)
class FreezeReleased:
    meter_id: str
    amount: int


@event("UsageCharged")
@dataclass(frozen=True)
class UsageCharged:
    meter_id: str
    seconds: int  # postpaid seconds newly charged
    amount: int
    from_frozen: int
    from_available: int
    until_seconds: int  # the meter's usage seconds this settlement reached
    at: str


@event("PrepaidHoursPurchased")
@dataclass(frozen=True)
class PrepaidHoursPurchased:
    spec_id: str
    spec_name: str
    seconds: int
    amount: int


@event("PrepaidHoursConsumed")
@dataclass(frozen=True)
class PrepaidHoursConsumed:
    meter_id: str
    spec_id: str
    seconds: int
    value: int  # the share of the purchase price those seconds carry
    until_seconds: int
    at: str


@event("MeterStopped")
@dataclass(frozen=True)
class MeterStopped:
    meter_id: str
    reason: str  # "completed", "user", "insufficient_funds", "vanished", ...
    seconds: int
    stopped_at: str
