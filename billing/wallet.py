"""Commands on a tenant's wallet: each one locks the wallet, checks its rules and appends.

The wallet's read model row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE already serialises writers) before any rule is checked, and the events are
appended at the version that row holds, so two concurrent freezes can never both spend the
same money: the second waits for the first, then sees what is left. The inline projection
keeps the row equal to the fold of the stream in the same transaction, so the row is the
aggregate state (replaying a long wallet stream on every command would not scale).
"""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.events import (
    BalanceAdjusted,
    PrepaidHoursPurchased,
    WalletOpened,
    WalletSettingsChanged,
)
from billing.models import ComputeSpec, PrepaidBalance, Wallet
from billing.money import format_amount
from core.errors import InsufficientFunds, ValidationFailed
from eventlog.aggregates import retry_on_conflict
from eventlog.store import RecordedEvent, Stream, append

T = TypeVar("T")
STREAM_TYPE = "wallet"


def wallet_stream(tenant_id: object) -> Stream:
    """The tenant's wallet stream: its id is the tenant id."""
    return Stream.of(tenant_id, STREAM_TYPE, tenant_id)


def default_currency() -> str:
    return settings.BILLING_CURRENCY


class LockedWallet:
    """A wallet row locked for this transaction, and the append that advances it."""

    def __init__(self, wallet: Wallet):
        self.wallet = wallet

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.wallet.tenant_id

    def append(self, *events: object, reload: bool = True) -> list[RecordedEvent]:
        """Append at the locked version; the projection updates the row, re-read here unless
        the command reads nothing after (`reload=False`: one query less per settlement)."""
        if not events:
            return []
        recorded = append(wallet_stream(self.tenant_id), self.wallet.version, list(events))
        if reload:
            self.wallet.refresh_from_db()
        return recorded

    def require_available(self, amount: int, what: str) -> None:
        """402 naming the shortfall when `amount` is more than the available balance."""
        available = self.wallet.available
        if amount > available:
            currency = self.wallet.currency
            raise InsufficientFunds(
                f"{what} needs {format_amount(amount, currency)} available; the wallet has "
                f"{format_amount(max(available, 0), currency)}, short by "
                f"{format_amount(amount - max(available, 0), currency)}. Top up first.")


@contextmanager
def locked(tenant_id: object) -> Iterator[LockedWallet]:
    """The tenant's wallet, opened if it has no stream yet, locked until the transaction ends."""
    with transaction.atomic():
        wallet = Wallet.objects.for_tenant(tenant_id).select_for_update().first()
        if wallet is None:
            append(wallet_stream(tenant_id), 0, [WalletOpened(currency=default_currency())])
            wallet = Wallet.objects.for_tenant(tenant_id).select_for_update().get()
        yield LockedWallet(wallet)


def with_wallet(tenant_id: object, command: Callable[[LockedWallet], T]) -> T:
    """Run `command` on the locked wallet; retried when another opener won the first append."""

    def on_locked_wallet() -> T:
        with locked(tenant_id) as wallet:
            return command(wallet)

    return retry_on_conflict(on_locked_wallet)


def view(tenant_id: object) -> Wallet:
    """The wallet as it stands (an unsaved zero wallet for a tenant that never used one)."""
    wallet = Wallet.objects.for_tenant(tenant_id).first()
    if wallet is None:
        wallet = Wallet(tenant_id=tenant_id, currency=default_currency(), version=0,
                        updated_at=timezone.now())
    return wallet


def adjust(tenant_id: object, amount: int, reason: str, actor: str, *,
           allow_negative: bool = False) -> Wallet:
    """An audited manual credit (positive) or debit (negative) by staff."""
    if amount == 0:
        raise ValidationFailed("An adjustment of 0 changes nothing.",
                               fields={"amount": ["Must not be 0."]})
    if not reason.strip():
        raise ValidationFailed("Say why: the reason is kept in the ledger.",
                               fields={"reason": ["This field is required."]})

    def command(w: LockedWallet) -> Wallet:
        if amount < 0 and not allow_negative:
            w.require_available(-amount, "This debit")
        w.append(BalanceAdjusted(amount=amount, reason=reason.strip(), actor=actor))
        return w.wallet

    return with_wallet(tenant_id, command)


def set_prepaid_fallback(tenant_id: object, enabled: bool) -> Wallet:
    """Whether prepaid usage continues postpaid when its hours run out (else it stops)."""

    def command(w: LockedWallet) -> Wallet:
        if w.wallet.prepaid_fallback_to_postpaid != enabled:
            w.append(WalletSettingsChanged(prepaid_fallback_to_postpaid=enabled))
        return w.wallet

    return with_wallet(tenant_id, command)


def buy_prepaid_hours(tenant_id: object, spec: ComputeSpec, hours: int) -> PrepaidBalance:
    """Buy `hours` of `spec` at its current price from the available balance (402 if short)."""
    if hours < 1:
        raise ValidationFailed("Buy at least one hour.", fields={"hours": ["Must be >= 1."]})

    def command(w: LockedWallet) -> PrepaidBalance:
        require_currency(w, spec)
        amount = hours * spec.price_per_hour
        w.require_available(amount, f"{hours} hours of {spec.name}")
        w.append(PrepaidHoursPurchased(spec_id=str(spec.id), spec_name=spec.name,
                                       seconds=hours * 3600, amount=amount))
        return PrepaidBalance.objects.for_tenant(w.tenant_id).get(spec_id=spec.id)

    return with_wallet(tenant_id, command)


def require_currency(w: LockedWallet, spec: ComputeSpec) -> None:
    """Specs priced in another currency than the wallet's cannot be used."""
    if spec.currency != w.wallet.currency:
        raise ValidationFailed(
            f"Spec {spec.name} is priced in {spec.currency}, the wallet holds "
            f"{w.wallet.currency}.", fields={"spec": ["Priced in another currency."]})
