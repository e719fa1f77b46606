"""Leases on work, the rows of one table (core.models.WorkLease): a worker claims a piece of
work, renews the claim, and gives it up at the end; a claim nobody renewed for its timeout may
be taken by another worker. Workers hold them through core.lifecycle (`hold`), which renews
them from a side thread; the lifecycle sweep finds the stale ones.

A claim is one conditional UPDATE (or one INSERT), so two workers racing for the same work
cannot both win, on SQLite or PostgreSQL.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from core.models import WorkLease
from core.nodes import node_name


def new_holder() -> str:
    """A holder name unique to one claim: this process, plus a nonce for its threads."""
    return f"{node_name()}:{uuid.uuid4().hex[:8]}"


def claim(key: str, holder: str, *, stale_after_s: float, take: bool = False) -> bool:
    """Take the lease on `key` when it is free, stale or already `holder`'s (or always, with
    `take`); whether `holder` holds it now."""
    now = timezone.now()
    held = WorkLease.objects.filter(key=key)
    if not take:
        held = held.filter(Q(holder=holder)
                           | Q(last_seen_at__lt=now - timedelta(seconds=stale_after_s)))
    with transaction.atomic():
        if held.update(holder=holder, last_seen_at=now):
            return True
        try:
            with transaction.atomic():
                WorkLease.objects.create(key=key, holder=holder, last_seen_at=now)
        except IntegrityError:  # another worker claimed it first
            return False
    return True


def beat(key: str, holder: str, *, at: datetime | None = None) -> bool:
    """Renew `holder`'s lease (as of `at`, default now); False when it is no longer theirs."""
    return bool(WorkLease.objects.filter(key=key, holder=holder).update(
        last_seen_at=at or timezone.now()))


def release(key: str, holder: str | None = None) -> None:
    """Give the lease up (only `holder`'s own; without one, whoever holds it: the lost-work
    sweep ends a silent worker's claim, which then finds itself superseded)."""
    held = WorkLease.objects.filter(key=key)
    (held if holder is None else held.filter(holder=holder)).delete()


def last_seen(keys: Iterable[str]) -> dict[str, datetime]:
    """When each held key was last renewed (keys without a lease are absent)."""
    return dict(WorkLease.objects.filter(key__in=list(keys)).values_list("key", "last_seen_at"))


def with_prefix(prefix: str) -> dict[str, datetime]:
    """The leases whose key starts with `prefix`, and when each was last renewed."""
    return dict(WorkLease.objects.filter(key__startswith=prefix).values_list(
        "key", "last_seen_at"))


def fresh(prefix: str, within_s: float) -> Exists:
    """An expression for querysets: some lease whose key starts with `prefix` was renewed in
    the last `within_s` seconds."""
    cutoff = timezone.now() - timedelta(seconds=within_s)
    return Exists(WorkLease.objects.filter(key__startswith=prefix, last_seen_at__gte=cutoff))


def forget_all() -> dict[str, datetime]:
    """Drop every lease: at the start of a process whose in-process worker held them all.
    When each was last renewed (what the lost work is billed up to)."""
    with transaction.atomic():
        dropped = dict(WorkLease.objects.select_for_update().values_list("key", "last_seen_at"))
        WorkLease.objects.filter(key__in=list(dropped)).delete()
    return dropped
