"""One lifecycle for every piece of work a worker holds: a training attempt, an evaluation, a
service instance, a dataset validation.

Worker side. The app claims the work on its own stream first (a version-checked event), then
holds its lease for as long as it works:

    with lifecycle.hold(key, take=True, on_beat=meter_beat, look=stop_requested) as held:
        if held is None:
            return                  # a live worker holds it: this delivery is a duplicate
        ... held.is_set()           # a stop was asked for, or the work is no longer this
                                    # worker's (held.superseded): stop at the next step

The lease (core.leases, one table) is claimed with one conditional UPDATE or one INSERT, so two
workers racing for it cannot both win, on SQLite or PostgreSQL. A side thread renews it every
`every_s` and calls the app's `on_beat` (the billing meter's heartbeat) with the same instant;
it also calls the app's `look` every `look_every_s`, which answers a stop reason, SUPERSEDED
(the work moved on without this worker), or nothing. A lease another holder took over (or the
loss sweep released) makes the holder superseded too. The lease is released at the end.

Scheduler side. Each app registers a `Kind`: how long its leases may stay silent, which of its
work is running, and its own interrupt command. `sweep()` finds the running work of every kind
whose lease is stale (or that never beat and started before the cutoff) and hands it to that
kind's command: a task is interrupted and retried from its checkpoint, an evaluation is
interrupted and run again, a service instance is started again, each up to its own limit.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core import leases
from core.scheduler import periodic

log = logging.getLogger(__name__)

SUPERSEDED = "superseded"  # what `look` answers when the work is no longer this worker's


class Held(threading.Thread):
    """A held lease renewed every `every_s` until `finish()`; the app's billing heartbeat rides
    along, and its stop look runs every `look_every_s` (here, and in `is_set()` when due)."""

    def __init__(self, key: str, holder: str, every_s: float, *,
                 on_beat: Callable[[datetime], object] | None = None,
                 look: Callable[[], str | None] | None = None,
                 look_every_s: float | None = None) -> None:
        super().__init__(name=f"lease-{key}", daemon=True)
        self.key, self.holder, self.every_s = key, holder, every_s
        self.on_beat, self._look = on_beat, look
        self.look_every_s = every_s if look_every_s is None else look_every_s
        self.lost = False  # another holder took the lease over, or the sweep released it
        self.superseded = False  # lost, or the app says the work moved on without us
        self.stop_reason = ""
        self.last_look = time.monotonic()
        self._done = threading.Event()

    def is_set(self) -> bool:
        """The cancel token a work loop checks every step: it looks itself when a look is due,
        so a stop it sees ends the work at that very step."""
        if (not self.stop_reason and self._look is not None
                and time.monotonic() - self.last_look >= self.look_every_s):
            self.look()
        return bool(self.stop_reason)

    def look(self) -> None:
        """Ask the app whether to stop (a reason) or whether the work moved on (SUPERSEDED)."""
        self.last_look = time.monotonic()
        if self._look is None:
            return
        said = self._look()
        if said == SUPERSEDED:
            self._supersede()
        elif said and not self.stop_reason:
            self.stop_reason = said

    def beat(self) -> bool:
        """Renew the lease, then the app's heartbeat at the same instant; False once lost."""
        now = timezone.now()
        if not leases.beat(self.key, self.holder, at=now):
            self.lost = True
            self._supersede()
            return False
        if self.on_beat is not None and not self.superseded:
            self.on_beat(now)
        return True

    def _supersede(self) -> None:
        self.superseded = True
        self.stop_reason = SUPERSEDED

    def run(self) -> None:
        # The work's own thread looks at every due step (`is_set`); this thread covers the
        # phases without steps (loading, exporting), where a coarser look is enough.
        poll = self.every_s if self._look is None else min(
            self.every_s, max(self.look_every_s, 0.05))
        last_beat = time.monotonic()
        try:
            while not self._done.wait(poll):
                try:
                    self.look()
                except Exception:  # a database hiccup: look again at the next poll
                    log.warning("lease %s: stop look failed", self.key, exc_info=True)
                if time.monotonic() - last_beat < self.every_s:
                    continue
                last_beat = time.monotonic()
                try:
                    if not self.beat():
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    log.warning("lease %s not renewed; trying again", self.key, exc_info=True)
        finally:
            connection.close()

    def finish(self) -> None:
        """Stop renewing (the lease itself is released by `hold`)."""
        self._done.set()
        if self.is_alive():
            self.join(timeout=5)


@contextlib.contextmanager
def hold(key: str, *, stale_after_s: float | None = None, every_s: float | None = None,
         take: bool = False, on_beat: Callable[[datetime], object] | None = None,
         look: Callable[[], str | None] | None = None, look_every_s: float | None = None
         ) -> Iterator[Held | None]:
    """Claim `key` (taking it over with `take`: the app's own claim already decided) and renew
    it while the block runs, released after; None when a live worker holds it."""
    stale_after_s = settings.WORK_LEASE_TIMEOUT_S if stale_after_s is None else stale_after_s
    every_s = settings.WORK_HEARTBEAT_S if every_s is None else every_s
    holder = leases.new_holder()
    if not leases.claim(key, holder, stale_after_s=stale_after_s, take=take):
        yield None
        return
    held = Held(key, holder, every_s, on_beat=on_beat, look=look, look_every_s=look_every_s)
    held.start()
    try:
        yield held
    finally:
        held.finish()
        leases.release(key, holder)


# --- finding lost work -------------------------------------------------------------------


@dataclass(frozen=True)
class Running:
    """A piece of running work as its app sees it: its lease key, and when it started (a
    worker that died before its first beat left no lease)."""

    key: str
    tenant_id: object
    work_id: object
    since: datetime | None
    number: int | None = None  # a service instance's number


@dataclass(frozen=True)
class Lost:
    """Running work whose worker went silent, and when it was last heard of."""

    work: Running
    last_seen: datetime


@dataclass(frozen=True)
class Kind:
    """A kind of held work: its silence limit, its running work and its interrupt command
    (`interrupt(lost, lost_all) -> how many pieces of work it sent again`)."""

    name: str
    timeout_s: Callable[[], float]
    running: Callable[[], Iterable[Running]]
    interrupt: Callable[[list[Lost], bool], int]


_kinds: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a kind to the sweep (again under the same name: replaced)."""
    _kinds[kind.name] = kind
    return kind


def kinds() -> list[str]:
    """The registered kinds' names."""
    return list(_kinds)


def find_lost(kind: Kind, *, now: datetime | None = None, lost_all: bool = False,
              last_seen: Mapping[str, datetime] | None = None) -> list[Lost]:
    """The running work of `kind` whose lease is older than its timeout (with `lost_all`,
    all of it: every worker died with the process). `last_seen`: leases already dropped."""
    now = now or timezone.now()
    cutoff = now if lost_all else now - timedelta(seconds=kind.timeout_s())
    running = list(kind.running())
    seen = {**(last_seen or {}), **leases.last_seen(work.key for work in running)}
    lost = []
    for work in running:
        last = seen.get(work.key) or work.since
        if last is not None and last < cutoff:
            lost.append(Lost(work, last))
    return lost


def sweep(*, now: datetime | None = None, lost_all: bool = False,
          last_seen: Mapping[str, datetime] | None = None) -> dict[str, int]:
    """Interrupt the lost work of every kind through its own command; per kind, how many
    pieces of work were sent again (a failing kind is logged, -1). `last_seen`: when the
    leases a restarted process dropped were last renewed (what the work is billed up to)."""
    done: dict[str, int] = {}
    for name, kind in _kinds.items():
        try:
            lost = find_lost(kind, now=now, lost_all=lost_all, last_seen=last_seen)
            done[name] = kind.interrupt(lost, lost_all) if lost else 0
        except Exception:
            log.exception("the lease sweep of %s failed", name)
            done[name] = -1
        else:
            if lost:
                log.warning("%s: %d lost (no heartbeat), %d sent again", name, len(lost),
                            done[name])
    return done


# The tasks' lease check and the service instances' check, unified: one sweep at the shorter
# of their intervals looks at every kind (each with its own timeout).
_CHECK_EVERY_S = min(settings.TASK_LEASE_CHECK_INTERVAL_S,
                     settings.SERVING_INSTANCE_CHECK_INTERVAL_S)


@periodic(_CHECK_EVERY_S, name="core.lifecycle_sweep")
def periodic_sweep() -> None:
    """Run in the scheduler: find lost work of every kind."""
    from django.db import close_old_connections

    try:
        sweep()
    finally:
        close_old_connections()
