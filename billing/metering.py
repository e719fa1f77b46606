"""Usage meters: start (freeze), periodic settlement, stop (settle and release), vanished runs.

A meter counts whole seconds from its start. Periodic settlement counts the seconds that have
fully passed (floor); the final settlement at stop counts every started second (ceil). Prepaid
meters first draw the tenant's hours of their spec; postpaid usage is charged as
`usage_amount(postpaid seconds, price at start) - already charged`, so rounding never adds up.
"""

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from billing.events import (
    FreezeReleased,
    FundsFrozen,
    MeterStarted,
    MeterStopped,
    MeterSwitchedToPostpaid,
    PrepaidHoursConsumed,
    UsageCharged,
)
from billing.models import ComputeSpec, Meter, MeterLease, PrepaidBalance
from billing.money import format_amount, freeze_amount, prepaid_value, usage_amount
from billing.wallet import LockedWallet, require_currency, with_wallet
from core.errors import AlreadyMetered, InsufficientFunds, NotFound, ValidationFailed

log = logging.getLogger(__name__)

POSTPAID, PREPAID = "postpaid", "prepaid"
MODES = (POSTPAID, PREPAID)
INSUFFICIENT_FUNDS = "insufficient_funds"
VANISHED = "vanished"
SETTLEMENT_CHUNK = 1000  # meters a transaction: at most 4 events each, under 4,096 a transaction

class _Book:
    """A locked wallet's money while events are worked out, before they are appended: the
    available balance and prepaid hours per spec, drawn down meter by meter."""

    def __init__(self, w: LockedWallet):
        self.tenant_id = w.tenant_id
        self.available = w.wallet.available
        self.fallback = w.wallet.prepaid_fallback_to_postpaid
        self._prepaid: dict[str, list[int]] = {}

    def prepaid(self, spec_id: object) -> list[int]:
        """[seconds, value] of the spec's prepaid hours, mutable."""
        key = str(spec_id)
        if key not in self._prepaid:
            hours = PrepaidBalance.objects.for_tenant(self.tenant_id).filter(
                spec_id=spec_id).first()
            self._prepaid[key] = [hours.seconds, hours.value] if hours else [0, 0]
        return self._prepaid[key]


def _elapsed_seconds(meter: Meter, at: datetime, *, final: bool) -> int:
    elapsed = max(0.0, (at - meter.started_at).total_seconds())
    seconds = math.ceil(elapsed) if final else math.floor(elapsed)
    return max(seconds, meter.settled_seconds)


def start(tenant_id: object, *, resource_type: str, resource_id: object,
          spec: ComputeSpec, mode: str, project_id: object = None,
          at: datetime | None = None) -> Meter:
    """Start metering a resource; postpaid freezes two hours of the spec's price (402 if short).

    Refused: nothing is written. A prepaid start needs hours of the spec, or the tenant's
    permission to fall back to postpaid (and then the freeze).
    """
    if mode not in MODES:
        raise ValidationFailed(f"billing_mode must be one of {', '.join(MODES)}.",
                               fields={"billing_mode": [f"Not one of {', '.join(MODES)}."]})
    if not spec.active:
        raise ValidationFailed(f"Spec {spec.name} is no longer offered.",
                               fields={"spec": ["This spec is retired."]})
    at = at or timezone.now()
    meter_id = str(uuid.uuid4())

    def command(w: LockedWallet) -> Meter:
        require_currency(w, spec)
        if Meter.objects.for_tenant(w.tenant_id).filter(
                resource_type=resource_type, resource_id=str(resource_id),
                state=Meter.RUNNING).exists():
            raise AlreadyMetered(f"{resource_type} {resource_id} is already metered; stop it "
                                 "first.")
        events: list[object] = [MeterStarted(
            meter_id=meter_id, resource_type=resource_type, resource_id=str(resource_id),
            project_id=str(project_id) if project_id else None, spec_id=str(spec.id),
            spec_name=spec.name, price_per_hour=spec.price_per_hour, mode=mode,
            started_at=at.isoformat())]
        postpaid = mode == POSTPAID
        if not postpaid and _Book(w).prepaid(spec.id)[0] <= 0:
            if not w.wallet.prepaid_fallback_to_postpaid:
                raise InsufficientFunds(
                    f"No prepaid hours of {spec.name} are left; buy hours, start it "
                    f"postpaid, or let prepaid usage fall back to postpaid.")
            events.append(MeterSwitchedToPostpaid(meter_id=meter_id, at_seconds=0))
            postpaid = True
        if postpaid:
            freeze = freeze_amount(spec.price_per_hour)
            w.require_available(freeze, f"Starting on {spec.name} (2 hours frozen)")
            events.append(FundsFrozen(meter_id=meter_id, amount=freeze))
        w.append(*events)
        MeterLease.objects.update_or_create(meter_id=meter_id, defaults={"last_seen_at": at})
        return Meter.objects.for_tenant(w.tenant_id).get(id=meter_id)

    return with_wallet(tenant_id, command)


def _advance(book: _Book, meter: Meter, seconds: int, at: datetime, *,
             stop_reason: str | None) -> tuple[list[object], str | None]:
    """The events that bring `meter` to `seconds`; a stop_reason settles it for good.

    Draws on `book` as it goes. Returns the events and the reason billing itself stops the
    meter (short of funds), if it does.
    """
    meter_id = str(meter.id)
    events: list[object] = []
    stamp = at.isoformat()
    forced: str | None = None
    frozen, settled = meter.frozen, meter.settled_seconds
    postpaid_from = meter.postpaid_from_seconds
    if postpaid_from is None and seconds > settled:
        hours = book.prepaid(meter.spec_id)
        take = min(seconds - settled, hours[0])
        if take:
            value = prepaid_value(hours[1], hours[0], take)
            hours[0] -= take
            hours[1] -= value
            settled += take
            events.append(PrepaidHoursConsumed(
                meter_id=meter_id, spec_id=str(meter.spec_id), seconds=take, value=value,
                until_seconds=settled, at=stamp))
        if settled < seconds:  # the hours ran out during this period
            events.append(MeterSwitchedToPostpaid(meter_id=meter_id, at_seconds=settled))
            postpaid_from = settled
            if not book.fallback and stop_reason is None:
                forced = INSUFFICIENT_FUNDS
    if postpaid_from is not None and seconds > max(settled, postpaid_from):
        amount = usage_amount(seconds - postpaid_from, meter.price_per_hour) - meter.charged
        from_frozen = min(amount, frozen)
        events.append(UsageCharged(
            meter_id=meter_id, seconds=seconds - max(settled, postpaid_from), amount=amount,
            from_frozen=from_frozen, from_available=amount - from_frozen,
            until_seconds=seconds, at=stamp))
        frozen -= from_frozen
        book.available -= amount - from_frozen
        settled = seconds
    if stop_reason is None and forced is None and postpaid_from is not None:
        need = freeze_amount(meter.price_per_hour) - frozen
        if need > 0 and book.available >= need:
            events.append(FundsFrozen(meter_id=meter_id, amount=need))
            frozen += need
            book.available -= need
        elif need > 0:
            forced = INSUFFICIENT_FUNDS
            log.info("meter %s stopped: %s to keep 2 hours frozen, %s available", meter.id,
                     format_amount(need, meter.currency),
                     format_amount(book.available, meter.currency))
    if stop_reason is not None or forced is not None:
        if frozen > 0:
            events.append(FreezeReleased(meter_id=meter_id, amount=frozen))
            book.available += frozen
        events.append(MeterStopped(meter_id=meter_id, reason=forced or stop_reason or "",
                                   seconds=seconds, stopped_at=stamp))
    return events, forced


def _running_meter(w: LockedWallet, meter_id: object) -> Meter:
    meter = Meter.objects.for_tenant(w.tenant_id).filter(id=meter_id).first()
    if meter is None:
        raise NotFound("Meter not found.")
    return meter


def settle(tenant_id: object, meter_id: object, at: datetime | None = None) -> Meter:
    """Charge a running meter's usage so far and keep two hours frozen (or stop it, short)."""
    at = at or timezone.now()

    def command(w: LockedWallet) -> Meter:
        meter = _running_meter(w, meter_id)
        if meter.state == Meter.RUNNING:
            _settle_locked(w, meter, at)
        return Meter.objects.for_tenant(w.tenant_id).get(id=meter.id)

    return with_wallet(tenant_id, command)


def _settle_locked(w: LockedWallet, meter: Meter, at: datetime) -> None:
    events, _ = _advance(_Book(w), meter, _elapsed_seconds(meter, at, final=False), at,
                         stop_reason=None)
    w.append(*events)  # a forced stop's MeterStopped is what the resource's app follows


def stop(tenant_id: object, meter_id: object, reason: str = "completed",
         at: datetime | None = None) -> Meter:
    """Settle the exact usage up to `at` and release what is still frozen; stopping twice is
    harmless (the first stop stands)."""
    at = at or timezone.now()

    def command(w: LockedWallet) -> Meter:
        meter = _running_meter(w, meter_id)
        if meter.state == Meter.RUNNING:
            events, _ = _advance(_Book(w), meter, _elapsed_seconds(meter, at, final=True),
                                 at, stop_reason=reason)
            w.append(*events)
        return Meter.objects.for_tenant(w.tenant_id).get(id=meter.id)

    return with_wallet(tenant_id, command)


def stop_resource(tenant_id: object, resource_type: str, resource_id: object,
                  reason: str = "completed", at: datetime | None = None) -> Meter | None:
    """Stop the running meter of a resource, if it has one."""
    meter = (Meter.objects.for_tenant(tenant_id)
             .filter(resource_type=resource_type, resource_id=str(resource_id),
                     state=Meter.RUNNING).first())
    return stop(tenant_id, meter.id, reason, at) if meter else None


def heartbeat(meter_id: object, at: datetime | None = None) -> None:
    """The resource is alive; without heartbeats for BILLING_LEASE_TIMEOUT_S it is settled as
    vanished at its last heartbeat."""
    MeterLease.objects.update_or_create(meter_id=meter_id,
                                        defaults={"last_seen_at": at or timezone.now()})


@dataclass(frozen=True)
class SettlementRun:
    """What one settlement pass did."""

    settled: int
    stopped_short: int
    vanished: int
    failed: int = 0


def settle_running(at: datetime | None = None, *, tenant_ids: Iterable[object] | None = None
                   ) -> SettlementRun:
    """Settle every running meter, one transaction per tenant; vanished ones are stopped at
    their last heartbeat."""
    at = at or timezone.now()
    running = Meter.objects.unscoped().filter(state=Meter.RUNNING)
    if tenant_ids is not None:
        running = running.filter(tenant_id__in=list(tenant_ids))
    by_tenant: dict[object, list[object]] = defaultdict(list)
    for tenant_id, meter_id in running.values_list("tenant_id", "id"):
        by_tenant[tenant_id].append(meter_id)
    # The running meters' ids as a subquery: an IN list of every id is a statement of tens of
    # thousands of parameters to build and parse.
    leases = dict(MeterLease.objects.filter(meter_id__in=running.values("id")).values_list(
        "meter_id", "last_seen_at"))
    timeout = timedelta(seconds=settings.BILLING_LEASE_TIMEOUT_S)
    totals = {"settled": 0, "stopped_short": 0, "vanished": 0, "failed": 0}

    def command(w: LockedWallet, meter_ids: list[object]) -> dict[str, int]:
        counts = {"settled": 0, "stopped_short": 0, "vanished": 0}
        book, events = _Book(w), []
        for meter in Meter.objects.for_tenant(w.tenant_id).filter(
                id__in=meter_ids, state=Meter.RUNNING).order_by("started_at", "id"):
            seen = leases.get(meter.id, meter.started_at)
            if at - seen > timeout:
                more, _ = _advance(book, meter, _elapsed_seconds(meter, seen, final=True), seen,
                                   stop_reason=VANISHED)
                forced, outcome = VANISHED, "vanished"
            else:
                more, forced = _advance(book, meter, _elapsed_seconds(meter, at, final=False),
                                        at, stop_reason=None)
                outcome = "settled" if forced is None else "stopped_short"
            events += more
            counts[outcome] += 1
        w.append(*events, reload=False)  # one version check, one insert; nothing reads it after
        return counts

    for tenant_id, meter_ids in by_tenant.items():
        # One transaction per chunk: a wallet with thousands of running meters stays under
        # the event log's per-transaction limit, and a failing tenant does not stop the others.
        for start in range(0, len(meter_ids), SETTLEMENT_CHUNK):
            chunk = meter_ids[start:start + SETTLEMENT_CHUNK]
            try:
                counts = with_wallet(tenant_id, lambda w, ids=chunk: command(w, ids))
            except Exception:
                log.exception("settlement of %d meters of tenant %s failed", len(chunk),
                              tenant_id)
                totals["failed"] += len(chunk)
                continue
            for name, count in counts.items():
                totals[name] += count
    return SettlementRun(**totals)
