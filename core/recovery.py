"""Finding queued and running work again after a crash, and sending it to a worker again.

The embedded broker keeps its messages in memory, so a killed `make run` loses every queued
message; RabbitMQ keeps them, but what is queued or running must not depend on it. So each app
registers a recoverer that looks at its own state (queued, validating, running) beside the
worker leases and heartbeats, and sends again what no live worker holds:

    @recovery.recoverer("tasks")
    def recover_tasks(sweep: recovery.Sweep) -> int:
        for task in queued_tasks():
            if sweep.due(f"task:{task.id}:{task.attempt}", task.updated_at):
                TRAIN.send(str(task.id), task.attempt)  # a core.work.Work, by name

Duplicate messages are expected (a queued message RabbitMQ still holds, a redelivery): every
job claims its work first (a version-checked event or a lease) and a duplicate does nothing;
nothing is frozen or charged by sending again.

The sweep runs when a process with an in-process worker starts (`serve`: every lease and
message then belonged to the dead process, so all of it is due at once), and every
RECOVERY_INTERVAL_S in the scheduler (queued work is due when it has waited
RECOVERY_REQUEUE_AFTER_S since it was last sent). Running work whose worker went silent is
core.lifecycle's: its sweep runs after the recoverers here (so that what it queues again is
not sent twice), and on its own in the scheduler, more often.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core import leases, lifecycle
from core.scheduler import periodic

log = logging.getLogger(__name__)

# When this process last sent each piece of work again (key -> monotonic time): a message may
# wait in a busy queue for long, and one duplicate per RECOVERY_REQUEUE_AFTER_S is enough.
_sent: dict[str, float] = {}


@dataclass
class Sweep:
    """One pass: its time, and whether every worker of the deployment died with the process."""

    lost_all: bool = False
    now: datetime = field(default_factory=timezone.now)

    @property
    def requeue_before(self) -> datetime:
        """Work sent before this may have lost its message."""
        return self.now - timedelta(seconds=settings.RECOVERY_REQUEUE_AFTER_S)

    def stale_before(self, timeout_s: float) -> datetime:
        """A heartbeat older than this (`timeout_s` ago) belongs to a dead worker."""
        return self.now if self.lost_all else self.now - timedelta(seconds=timeout_s)

    def due(self, key: str, since: datetime | None) -> bool:
        """Whether to send `key` again: it was sent at `since` (None: known lost) and its
        message may be gone, and this process did not send it again lately. Records the send."""
        now = time.monotonic()
        if not self.lost_all:
            if since is not None and since > self.requeue_before:
                return False
            sent = _sent.get(key)
            if sent is not None and now - sent < settings.RECOVERY_REQUEUE_AFTER_S:
                return False
        _sent[key] = now
        return True


Recoverer = Callable[[Sweep], int]
_recoverers: dict[str, Recoverer] = {}


def recoverer(name: str) -> Callable[[Recoverer], Recoverer]:
    """Register `fn(sweep) -> how many pieces of work it sent again` under `name`."""

    def register(fn: Recoverer) -> Recoverer:
        _recoverers[name] = fn
        return fn

    return register


def sweep(*, lost_all: bool = False) -> dict[str, int]:
    """Run every recoverer once; what each sent again (a failing one is logged, -1)."""
    dropped: dict[str, datetime] = {}
    if lost_all:
        dropped = leases.forget_all()  # free for the new process's workers to claim at once
        _sent.clear()
    forget_before = time.monotonic() - 2 * settings.RECOVERY_REQUEUE_AFTER_S
    for key in [key for key, sent in _sent.items() if sent < forget_before]:
        del _sent[key]  # long done, or due again anyway: the scheduler runs for months
    run = Sweep(lost_all=lost_all)
    done: dict[str, int] = {}
    for name, fn in _recoverers.items():
        try:
            done[name] = fn(run)
        except Exception:
            log.exception("recovery of %s failed", name)
            done[name] = -1
    for kind, count in lifecycle.sweep(now=run.now, lost_all=lost_all,
                                       last_seen=dropped).items():
        done[f"lost {kind}"] = count
    recovered = {name: count for name, count in done.items() if count}
    if recovered:
        log.warning("recovered work (sent again): %s", recovered)
    return done


@periodic(settings.RECOVERY_INTERVAL_S, name="core.recovery_sweep")
def periodic_sweep() -> None:
    """Run in the scheduler itself (one process), so that `_sent` spaces the duplicates."""
    from django.db import close_old_connections

    try:
        sweep()
    finally:
        close_old_connections()
