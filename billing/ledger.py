"""Double-entry postings of wallet events: every event's postings add up to zero.

Tenant accounts hold what the platform owes the tenant (positive is money the tenant has);
platform accounts are the other side of each movement:

    tenant:available     spendable balance          platform:payment_clearing  money received
    tenant:frozen        held for running usage     platform:revenue           usage earned
    tenant:prepaid       value of unused hours      platform:adjustments       staff credits/debits

The wallet's balance is available + frozen; prepaid hours are money already spent on hours.
"""

from collections.abc import Mapping
from typing import Any

AVAILABLE = "tenant:available"
FROZEN = "tenant:frozen"
PREPAID = "tenant:prepaid"
CLEARING = "platform:payment_clearing"
REVENUE = "platform:revenue"
ADJUSTMENTS = "platform:adjustments"
ACCOUNTS = (AVAILABLE, FROZEN, PREPAID, CLEARING, REVENUE, ADJUSTMENTS)

Postings = list[tuple[str, int]]


def postings_for(event_type: str, data: Mapping[str, Any]) -> Postings:
    """The balanced postings of one wallet event (none for events that move no money)."""
    amount = data.get("amount", 0)
    match event_type:
        case "FundsDeposited":
            legs = [(AVAILABLE, amount), (CLEARING, -amount)]
        case "FundsRefunded":
            legs = [(AVAILABLE, -amount), (CLEARING, amount)]
        case "BalanceAdjusted":
            legs = [(AVAILABLE, amount), (ADJUSTMENTS, -amount)]
        case "FundsFrozen":
            legs = [(AVAILABLE, -amount), (FROZEN, amount)]
        case "FreezeReleased":
            legs = [(FROZEN, -amount), (AVAILABLE, amount)]
        case "UsageCharged":
            legs = [(FROZEN, -data["from_frozen"]), (AVAILABLE, -data["from_available"]),
                    (REVENUE, amount)]
        case "PrepaidHoursPurchased":
            legs = [(AVAILABLE, -amount), (PREPAID, amount)]
        case "PrepaidHoursConsumed":
            legs = [(PREPAID, -data["value"]), (REVENUE, data["value"])]
        case _:
            return []
    legs = [(account, value) for account, value in legs if value]
    if sum(value for _, value in legs) != 0:
        raise ValueError(f"{event_type} postings do not balance: {legs}")
    return legs
