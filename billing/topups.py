"""Wallet top-ups through Stripe Checkout, and the Stripe webhook that pays them.

A top-up starts pending with a Checkout Session; money reaches the wallet only when Stripe
says that session is paid. Each Stripe event is applied at most once: its id is recorded in
the transaction that applies its effect, so a replay, a retry or a concurrent delivery of the
same event finds the id and changes nothing. Deposits are idempotent per session as well (a
session's `completed` and `async_payment_succeeded` events pay once), and a refund applies the
difference between the charge's cumulative `amount_refunded` and what the top-up already had
refunded, so refund events may repeat without debiting twice.
"""

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from billing import wallet
from billing.events import FundsDeposited, FundsRefunded, TopupCreated, TopupFailed
from billing.models import StripeEvent, Topup
from billing.money import format_amount
from billing.wallet import LockedWallet, with_wallet
from core.errors import (
    IdempotencyKeyReused,
    InvalidSignature,
    PaymentProviderUnavailable,
    PaymentsNotConfigured,
    TopupNotPaidYet,
    ValidationFailed,
)

log = logging.getLogger(__name__)

# Top-up ids named by a client's Idempotency-Key are uuid5(this, "<tenant>:<key>").
TOPUP_ID_NAMESPACE = uuid.UUID("753172ae-fa39-4f0e-8e0a-f8b4c7908986")
SIGNATURE_TOLERANCE_S = 300
STRIPE_TIMEOUT_S = 30
STRIPE_RETRIES = 2  # safe: every call carries a fixed idempotency key
MAX_IDEMPOTENCY_KEY = 255
PRODUCT_NAME = "Compute credit"


# --- creating a top-up ---------------------------------------------------------------------------


def create_topup(tenant_id: object, amount: int, *, idempotency_key: str | None = None) -> Topup:
    """A pending top-up of `amount` minor units with a Stripe Checkout Session to pay it."""
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentsNotConfigured()
    amount = _valid_amount(amount)
    topup_id = _topup_id(tenant_id, idempotency_key)
    existing = Topup.objects.for_tenant(tenant_id).filter(id=topup_id).first()
    if existing is not None:
        return _same_request(existing, amount)
    currency = wallet.view(tenant_id).currency
    # Outside the wallet lock: a slow Stripe must not hold every other wallet command up.
    session = _create_checkout_session(tenant_id, topup_id, amount, currency)

    def record(w: LockedWallet) -> Topup:
        # A concurrent retry with the same key got the same session from Stripe (same
        # idempotency key) and may have recorded it while we waited for Stripe.
        found = Topup.objects.for_tenant(w.tenant_id).filter(id=topup_id).first()
        if found is not None:
            return _same_request(found, amount)
        w.append(TopupCreated(topup_id=str(topup_id), amount=amount, session_id=session["id"],
                              checkout_url=session["url"]))
        return Topup.objects.for_tenant(w.tenant_id).get(id=topup_id)

    return with_wallet(tenant_id, record)


def _valid_amount(amount: object) -> int:
    low, high = settings.BILLING_MIN_TOPUP, settings.BILLING_MAX_TOPUP
    if amount is None:
        raise ValidationFailed("Say how much to top up, in minor units.",
                               fields={"amount": ["This field is required."]})
    # bool is an int in Python; a float or a string is refused so that no rounding happens.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationFailed("The amount is an integer in minor units (cents).",
                               fields={"amount": ["A whole number of minor units is required."]})
    if not low <= amount <= high:
        currency = settings.BILLING_CURRENCY
        why = (f"Top up between {format_amount(low, currency)} and "
               f"{format_amount(high, currency)} ({low} to {high} minor units).")
        raise ValidationFailed(why, fields={"amount": [why]})
    return amount


def _topup_id(tenant_id: object, idempotency_key: str | None) -> uuid.UUID:
    key = (idempotency_key or "").strip()
    if not key:
        return uuid.uuid4()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            f"The Idempotency-Key header has at most {MAX_IDEMPOTENCY_KEY} characters.",
            fields={"Idempotency-Key": [f"At most {MAX_IDEMPOTENCY_KEY} characters."]})
    return uuid.uuid5(TOPUP_ID_NAMESPACE, f"{tenant_id}:{key}")


def _same_request(topup: Topup, amount: int) -> Topup:
    if topup.amount != amount:
        raise IdempotencyKeyReused()
    return topup


def stripe_client() -> stripe.StripeClient:
    """A Stripe client from the settings (STRIPE_API_BASE points it at a test double)."""
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(api_key=settings.STRIPE_SECRET_KEY, base_addresses=base,
                               max_network_retries=STRIPE_RETRIES,
                               http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_S))


def _create_checkout_session(tenant_id: object, topup_id: uuid.UUID, amount: int,
                             currency: str) -> dict[str, Any]:
    metadata = {"tenant_id": str(tenant_id), "topup_id": str(topup_id)}
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": currency.lower(), "unit_amount": amount,
            "product_data": {"name": PRODUCT_NAME}}}],
        "client_reference_id": str(topup_id),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": settings.STRIPE_SUCCESS_URL,
        "cancel_url": settings.STRIPE_CANCEL_URL,
    }
    client = stripe_client()
    sessions = getattr(client, "v1", client).checkout.sessions  # `v1` from stripe 12 on
    try:
        # Fixed per top-up: a retry (ours, the client's, the library's) gets the same session.
        session = sessions.create(params=params,
                                  options={"idempotency_key": f"topup-{topup_id}"})
    except stripe.StripeError as exc:
        log.warning("Stripe refused or failed checkout session for top-up %s: %s", topup_id, exc)
        raise PaymentProviderUnavailable() from exc
    # StripeObject was a dict in older stripe releases and has no .get() now; `in` and []
    # work in both.
    found = {key: session[key] if key in session else None  # noqa: SIM401
             for key in ("id", "url", "amount_total", "currency")}
    if (not found["id"] or not found["url"] or found["amount_total"] != amount
            or str(found["currency"]).upper() != currency.upper()):
        log.error("Stripe answered an unexpected checkout session for top-up %s: %s", topup_id,
                  found)
        raise PaymentProviderUnavailable()
    return found


# --- the webhook ---------------------------------------------------------------------------------


def handle_webhook(payload: bytes, signature_header: str | None) -> str:
    """Verify and apply one Stripe event once; returns what it did ("deposited", "duplicate"...)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise PaymentsNotConfigured()
    try:
        stripe.Webhook.construct_event(payload, signature_header or "", secret,
                                       tolerance=SIGNATURE_TOLERANCE_S)
        body = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(f"Stripe signature refused: {exc}") from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InvalidSignature("The payload is not a Stripe event.") from exc
    event_id, event_type, obj = _parts(body)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the duplicate's error must not end ours
                StripeEvent.objects.create(id=event_id, type=event_type[:100])
        except IntegrityError:
            log.info("Stripe event %s (%s) was already applied", event_id, event_type)
            return "duplicate"
        handler = _HANDLERS.get(event_type)
        if handler is None:
            return "ignored"
        result = handler(obj)
    log.info("Stripe event %s (%s): %s", event_id, event_type, result)
    return result


def _parts(body: object) -> tuple[str, str, dict[str, Any]]:
    """The event's id, type and object, or 400 when the signed payload is not an event."""
    if isinstance(body, dict):
        event_id, event_type, data = body.get("id"), body.get("type"), body.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if (isinstance(event_id, str) and event_id and len(event_id) <= 255
                and isinstance(event_type, str) and isinstance(obj, dict)):
            return event_id, event_type, obj
    raise InvalidSignature("The payload is not a Stripe event.")


def _on_session_completed(session: dict[str, Any]) -> str:
    # Delayed methods (bank debits) complete unpaid; async_payment_succeeded pays later.
    if session.get("payment_status") != "paid":
        return "awaiting_payment"
    return _deposit(session)


def _deposit(session: dict[str, Any]) -> str:
    topup = _topup_of_session(session)
    if topup is None:
        return "unknown_topup"

    def command(w: LockedWallet) -> str:
        # Read again under the wallet lock: another event of this session may have paid it.
        current = Topup.objects.for_tenant(w.tenant_id).get(id=topup.id)
        if current.state == Topup.PAID:
            return "already_paid"
        paid, currency = session.get("amount_total"), str(session.get("currency") or "")
        if paid != current.amount or currency.upper() != current.currency:
            log.error("Stripe session %s paid %s %s; top-up %s is %s %s: not deposited",
                      session.get("id"), paid, currency, current.id, current.amount,
                      current.currency)
            return "amount_mismatch"
        w.append(FundsDeposited(amount=current.amount, source="stripe", topup_id=str(current.id),
                                reference=session["id"],
                                payment_intent=_id_of(session.get("payment_intent"))))
        return "deposited"

    return with_wallet(topup.tenant_id, command)


def _on_async_payment_failed(session: dict[str, Any]) -> str:
    return _fail(session, "async_payment_failed")


def _on_session_expired(session: dict[str, Any]) -> str:
    return _fail(session, "expired")


def _fail(session: dict[str, Any], reason: str) -> str:
    topup = _topup_of_session(session)
    if topup is None:
        return "unknown_topup"

    def command(w: LockedWallet) -> str:
        current = Topup.objects.for_tenant(w.tenant_id).get(id=topup.id)
        if current.state != Topup.PENDING:
            return f"already_{current.state}"
        w.append(TopupFailed(topup_id=str(current.id), reason=reason))
        return "failed"

    return with_wallet(topup.tenant_id, command)


def _on_charge_refunded(charge: dict[str, Any]) -> str:
    topup = _topup_of_charge(charge)
    if topup is None:
        return "unknown_topup"
    refunded_total = charge.get("amount_refunded")
    if isinstance(refunded_total, bool) or not isinstance(refunded_total, int):
        log.error("Stripe charge %s has no amount_refunded", charge.get("id"))
        return "ignored"

    def command(w: LockedWallet) -> str:
        current = Topup.objects.for_tenant(w.tenant_id).get(id=topup.id)
        if current.state == Topup.PENDING:
            # Stripe does not order deliveries: refuse, so the refund comes back after the deposit.
            raise TopupNotPaidYet()
        if current.state != Topup.PAID:
            log.error("Stripe refunded charge %s of top-up %s, which is %s", charge.get("id"),
                      current.id, current.state)
            return "ignored"
        if str(charge.get("currency") or "").upper() != current.currency:
            log.error("Stripe charge %s is in %s; top-up %s is in %s: refund not applied",
                      charge.get("id"), charge.get("currency"), current.id, current.currency)
            return "currency_mismatch"
        # amount_refunded is cumulative; what it adds to this top-up's refunds is the news.
        delta = min(refunded_total, current.amount) - current.refunded
        if delta <= 0:
            return "already_refunded"
        w.append(FundsRefunded(amount=delta, topup_id=str(current.id),
                               reference=str(charge.get("id") or "")))
        return "refunded"

    return with_wallet(topup.tenant_id, command)


_HANDLERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "checkout.session.completed": _on_session_completed,
    "checkout.session.async_payment_succeeded": _deposit,
    "checkout.session.async_payment_failed": _on_async_payment_failed,
    "checkout.session.expired": _on_session_expired,
    "charge.refunded": _on_charge_refunded,
}


# --- finding the top-up an event names -----------------------------------------------------------


def _id_of(value: object) -> str:
    """A Stripe reference that may arrive as an id or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _topup_of_session(session: dict[str, Any]) -> Topup | None:
    """The top-up a Checkout Session pays, by its session id (unique, set when it was created)."""
    session_id = _id_of(session)
    # No tenant is known yet: the event names it, and the session id is what we trust.
    topup = Topup.objects.unscoped().filter(session_id=session_id).first() if session_id else None
    metadata = session.get("metadata") if isinstance(session.get("metadata"), dict) else {}
    if topup is None:
        log.warning("Stripe session %s (metadata %s) names no known top-up; ignored", session_id,
                    metadata)
        return None
    named = {key: _uuid(metadata[key]) for key in ("tenant_id", "topup_id") if key in metadata}
    if named.get("tenant_id", topup.tenant_id) != topup.tenant_id or named.get(
            "topup_id", topup.id) != topup.id:
        log.error("Stripe session %s metadata %s contradicts top-up %s of tenant %s; ignored",
                  session_id, metadata, topup.id, topup.tenant_id)
        return None
    return topup


def _topup_of_charge(charge: dict[str, Any]) -> Topup | None:
    """The top-up a charge paid: by its metadata's topup_id, else by its payment intent."""
    payment_intent = _id_of(charge.get("payment_intent"))
    metadata = charge.get("metadata") if isinstance(charge.get("metadata"), dict) else {}
    topups = Topup.objects.unscoped()
    named = _uuid(metadata.get("topup_id")) if metadata.get("topup_id") else None
    topup = topups.filter(id=named).first() if named else None
    if topup is None and payment_intent:
        topup = topups.filter(payment_intent=payment_intent).first()
    if topup is None:
        log.info("Stripe charge %s (payment intent %s) is not a known top-up; ignored",
                 charge.get("id"), payment_intent or "none")
        return None
    if topup.payment_intent and payment_intent and topup.payment_intent != payment_intent:
        log.error("Stripe charge %s names top-up %s but pays %s, not its %s; ignored",
                  charge.get("id"), topup.id, payment_intent, topup.payment_intent)
        return None
    return topup
