"""A tenant whose wallet stream holds every kind of money event, written by billing's commands."""

import uuid
from datetime import UTC, datetime, timedelta

from billing import metering, wallet
from billing.events import FundsDeposited, FundsRefunded, TopupCreated, TopupFailed
from billing.models import ComputeSpec
from eventlog.store import read_log

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MONEY_ROLES = {"owner", "admin", "finance"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def write_money_events(tenant_id: str) -> list[str]:
    """Fund, top up (paid, refunded, failed), meter postpaid and prepaid usage; the types written
    (WalletOpened only the first time).

    The top-up events are appended as `billing.topups` does once Stripe answered (no Stripe
    here); everything else goes through billing's own commands.
    """
    spec = ComputeSpec.objects.create(name=f"gpu-{uuid.uuid4().hex[:6]}", kind="gpu",
                                      gpu_model="T4", gpu_count=1, cpu_cores=4, memory_gib=16,
                                      price_per_hour=3600)
    before = [e.position for e in read_log(tenant_id=tenant_id, stream_type="wallet",
                                           limit=10_000)]
    wallet.adjust(tenant_id, 100_000, "test funding", "staff:test")
    paid, failed = str(uuid.uuid4()), str(uuid.uuid4())
    paid_session, failed_session = f"cs_test_{paid[:8]}", f"cs_test_{failed[:8]}"
    wallet.with_wallet(tenant_id, lambda w: w.append(
        TopupCreated(topup_id=paid, amount=2_500, session_id=paid_session,
                     checkout_url=f"https://checkout.stripe.com/c/pay/{paid_session}"),
        TopupCreated(topup_id=failed, amount=9_900, session_id=failed_session,
                     checkout_url=f"https://checkout.stripe.com/c/pay/{failed_session}")))
    wallet.with_wallet(tenant_id, lambda w: w.append(
        FundsDeposited(amount=2_500, source="stripe", topup_id=paid, reference=paid_session,
                       payment_intent="pi_test_1")))
    wallet.with_wallet(tenant_id, lambda w: w.append(
        FundsRefunded(amount=500, topup_id=paid, reference="ch_test_1"),
        TopupFailed(topup_id=failed, reason="expired")))
    postpaid = metering.start(tenant_id, resource_type="task", resource_id=uuid.uuid4(),
                              spec=spec, mode="postpaid", at=at(0))
    metering.settle(tenant_id, postpaid.id, at=at(60))
    metering.stop(tenant_id, postpaid.id, at=at(120))
    wallet.buy_prepaid_hours(tenant_id, spec, 1)
    wallet.set_prepaid_fallback(tenant_id, True)
    prepaid = metering.start(tenant_id, resource_type="task", resource_id=uuid.uuid4(),
                             spec=spec, mode="prepaid", at=at(0))
    metering.settle(tenant_id, prepaid.id, at=at(4_000))
    metering.stop(tenant_id, prepaid.id, at=at(4_100))
    return sorted({e.type for e in read_log(tenant_id=tenant_id, stream_type="wallet",
                                            after=max(before, default=0), limit=10_000)})
