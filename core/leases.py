"""Leases on work: a worker claims a piece of work, renews the claim from a side thread, and
gives it up at the end; a claim nobody renewed for its timeout may be taken by another worker.

    with leases.hold("dataset:<id>", stale_after_s=60) as lease:
        if lease is None:
            return              # a live worker holds it: this delivery is a duplicate
        ...                     # lease.lost turns True if another worker took it over

A claim is one conditional UPDATE (or one INSERT), so two workers racing for the same work
cannot both win, on SQLite or PostgreSQL.
"""

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from core.models import WorkLease
from core.nodes import node_name

log = logging.getLogger(__name__)


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


def beat(key: str, holder: str) -> bool:
    """Renew `holder`'s lease; False when it is no longer theirs."""
    return bool(WorkLease.objects.filter(key=key, holder=holder).update(
        last_seen_at=timezone.now()))


def release(key: str, holder: str) -> None:
    """Give the lease up (only `holder`'s own)."""
    WorkLease.objects.filter(key=key, holder=holder).delete()


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


def forget_all() -> int:
    """Drop every lease: at the start of a process whose in-process worker held them all."""
    count, _ = WorkLease.objects.all().delete()
    return count


class Lease(threading.Thread):
    """A held lease, renewed every `every_s` until `stop()`; `lost` once another holder took it."""

    def __init__(self, key: str, holder: str, every_s: float) -> None:
        super().__init__(name=f"lease-{key}", daemon=True)
        self.key, self.holder, self.every_s = key, holder, every_s
        self.lost = False
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.wait(self.every_s):
                try:
                    if not beat(self.key, self.holder):
                        self.lost = True
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("lease %s not renewed; trying again", self.key, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


@contextlib.contextmanager
def hold(key: str, *, stale_after_s: float | None = None, every_s: float | None = None,
         take: bool = False) -> Iterator[Lease | None]:
    """Claim `key` and renew it while the block runs; None when a live worker holds it."""
    stale_after_s = settings.WORK_LEASE_TIMEOUT_S if stale_after_s is None else stale_after_s
    every_s = settings.WORK_HEARTBEAT_S if every_s is None else every_s
    holder = new_holder()
    if not claim(key, holder, stale_after_s=stale_after_s, take=take):
        yield None
        return
    lease = Lease(key, holder, every_s)
    lease.start()
    try:
        yield lease
    finally:
        lease.stop()
        release(key, holder)
