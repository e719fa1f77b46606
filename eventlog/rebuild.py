"""Rebuilding read models: one paged scan of the log, fed to the projections in large batches.

On PostgreSQL a projection that folds is rebuilt into shadow tables (`<table>__rebuild`,
created LIKE the live ones) while the platform keeps serving and writing the live tables; the
shadows then replace them in one short transaction that locks the live tables, replays the
events committed since the scan (under the lock no writer of these tables is half way), renames
and records the checkpoints. Any other projection (one writing per event, or on SQLite) is
emptied and replayed in place, as before.

The scan reads pages of `page` events by position (each page one indexed range query and its
own transaction), so a rebuild of any length never holds back the log's safe horizon.
"""

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.db import OperationalError, connection, transaction
from django.db.models import Max, Model

from eventlog import guards, schema
from eventlog.models import Event, ProjectionCheckpoint
from eventlog.records import RecordedEvent

if TYPE_CHECKING:
    from eventlog.projections import Projection

PAGE = 10_000
_LOCK_TIMEOUT_MS, _LOCK_ATTEMPTS = 500, 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = ("position", "tenant_id", "stream_type", "stream_id", "version", "type",
            "schema_version", "data", "metadata", "recorded_at")


@dataclass(frozen=True)
class Progress:
    """Where a rebuild stands: its phase, events replayed of those expected, time spent."""

    phase: str  # "scan" (a page replayed), "scanned" (shadows filled), "swap" (locked), "done"
    done: int
    total: int | None
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Events replayed per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None when the total or the rate is unknown)."""
        if self.total is None or not self.rate:
            return None
        return max(self.total - self.done, 0) / self.rate


ProgressCallback = Callable[[Progress], None]


def replay_all(chosen: list["Projection"], *, wait_s: float = 60.0, page: int = PAGE,
               progress: ProgressCallback | None = None,
               shadow: bool | None = None) -> dict[str, int]:
    """Replay the whole log into these projections' read models; events handled per name.

    `shadow` (default: on PostgreSQL) builds projections that fold into fresh tables and swaps
    them in. Readers hold back events behind any open transaction (on PostgreSQL, in any
    database of the server): the replay goes on until it has reached every event committed when
    it began, waiting up to `wait_s` for old transactions to end, else RebuildIncomplete.
    """
    if shadow is None:
        shadow = connection.vendor == "postgresql"
    if shadow and connection.vendor != "postgresql":
        raise ValueError("shadow rebuilds need PostgreSQL")
    swapped = [p for p in chosen if shadow and p.folds and p.inline]
    in_place = [p for p in chosen if p not in swapped]
    run = _Run(chosen, progress, wait_s, page)
    if in_place:
        with transaction.atomic():
            for projection in in_place:
                projection.reset()
            run.save_checkpoints(in_place)
        run.replay(in_place, tables=None)
    if swapped:
        tables = {m: _shadow_name(m) for p in swapped for m in p.models}
        _create_shadows(tables)
        reached = run.replay(swapped, tables=tables)
        run.report("scanned")
        for attempt in range(_LOCK_ATTEMPTS):
            try:
                with transaction.atomic():
                    _lock(tables)
                    run.phase = "swap"
                    run.report("swap")
                    run.replay(swapped, tables=tables, after=reached, horizon=False,
                               wait=False)
                    _swap(tables)
                    run.save_checkpoints(swapped)
                break
            except OperationalError as exc:
                if _sqlstate(exc) != "55P03" or attempt == _LOCK_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))  # a writer held a table: try again
    run.report("done")
    return {p.name: run.handled[p.name] for p in chosen}


class _Run:
    """The bookkeeping of one rebuild: counts, last positions, progress reports."""

    def __init__(self, chosen: list["Projection"], progress: ProgressCallback | None,
                 wait_s: float, page: int):
        self.progress, self.wait_s, self.page = progress, wait_s, page
        self.started = time.monotonic()
        self.phase = "scan"
        self.handled = {p.name: 0 for p in chosen}
        self.last = {p.name: 0 for p in chosen}
        self.done = 0
        self.total = _count(_types(chosen)) if progress else None

    def replay(self, chosen: list["Projection"], *, tables: dict[type[Model], str] | None,
               after: int = 0, horizon: bool = True, wait: bool = True) -> int:
        """Feed every event after `after` to these projections; returns the position reached."""
        types = _types(chosen)
        target = _last_position(types) if wait else 0
        deadline = time.monotonic() + self.wait_s
        position = after
        while True:
            for events in pages(types, after=position, size=self.page, horizon=horizon):
                with transaction.atomic():
                    self._feed(chosen, events, tables)
                    if tables is None:
                        self.save_checkpoints(chosen)
                position = events[-1].position
                self.report(self.phase)
            if position >= target:
                return position
            if time.monotonic() > deadline:
                raise RebuildIncomplete(
                    f"{', '.join(p.name for p in chosen)} replayed up to {position} of "
                    f"{target}: a transaction open for over {self.wait_s:.0f} s holds readers "
                    "back; end it and rebuild again.")
            time.sleep(0.05)

    def _feed(self, chosen: list["Projection"], events: list[RecordedEvent],
              tables: dict[type[Model], str] | None) -> None:
        for projection in chosen:
            mine = [e for e in events if e.type in projection.event_types]
            if mine:
                projection.handle_batch(mine, tables=tables)
                self.handled[projection.name] += len(mine)
                self.last[projection.name] = mine[-1].position
        self.done += len(events)

    def save_checkpoints(self, chosen: list["Projection"]) -> None:
        for projection in chosen:
            ProjectionCheckpoint.objects.update_or_create(
                name=projection.name, defaults={"position": self.last[projection.name]})

    def report(self, phase: str) -> None:
        if self.progress is not None:
            self.progress(Progress(phase, self.done, self.total,
                                   time.monotonic() - self.started))


def pages(types: Sequence[str], *, after: int = 0, size: int = PAGE,
          horizon: bool = True) -> Iterator[list[RecordedEvent]]:
    """Events of these types after a position, in log order, a page (one query) at a time.

    With `horizon` (the default) no position that a later commit could precede is returned.
    """
    while True:
        events = _page(types, after, size, horizon)
        if not events:
            return
        yield events
        after = events[-1].position


def _page(types: Sequence[str], after: int, size: int, horizon: bool) -> list[RecordedEvent]:
    if connection.vendor != "postgresql":
        rows = (Event.objects.filter(position__gt=after, type__in=list(types))
                .order_by("position").values_list(*_COLUMNS)[:size])
        return [_recorded(row) for row in rows]
    limit = guards.safe_horizon_sql(connection) if horizon else None
    # The time as microseconds since the epoch: Django's time zone loader costs more per row
    # than the rest of the row together.
    columns = ", ".join(_COLUMNS[:-1]) + ", (extract(epoch FROM recorded_at) * 1e6)::bigint"
    sql = (f"SELECT {columns} FROM {guards.TABLE} "  # noqa: S608 - constant SQL
           "WHERE position > %s AND type = ANY(%s)"
           + (f" AND position < {limit}" if limit else "")
           + " ORDER BY position LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [after, list(types), size])
        return [_recorded(row) for row in cursor.fetchall()]


def _recorded(row: tuple) -> RecordedEvent:
    position, tenant, stream_type, stream_id, version, name, schema_version, data, meta, at = row
    if isinstance(data, str):  # Django's psycopg loads jsonb as text
        data = json.loads(data)
    if isinstance(meta, str):
        meta = json.loads(meta)
    if not isinstance(tenant, uuid.UUID):
        tenant = uuid.UUID(str(tenant))
    if isinstance(at, int):
        at = _EPOCH + timedelta(microseconds=at)
    schema_version, data = schema.upcast(name, schema_version, data)
    return RecordedEvent(position=position, tenant_id=tenant, stream_type=stream_type,
                         stream_id=stream_id, version=version, type=name,
                         schema_version=schema_version, data=data, metadata=meta,
                         recorded_at=at)


def _types(chosen: Iterable["Projection"]) -> list[str]:
    return sorted({t for p in chosen for t in p.event_types})


def _last_position(types: list[str]) -> int:
    return Event.objects.filter(type__in=types).aggregate(last=Max("position"))["last"] or 0


def _count(types: list[str]) -> int:
    return Event.objects.filter(type__in=types).count()


# --- shadow tables (PostgreSQL) -----------------------------------------------------------------

def _shadow_name(model: type[Model]) -> str:
    return f"{model._meta.db_table[:50]}__rebuild"  # identifiers stop at 63 characters


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _create_shadows(tables: dict[type[Model], str]) -> None:
    with connection.cursor() as cursor:
        for model, shadow in tables.items():
            cursor.execute(f"DROP TABLE IF EXISTS {_q(shadow)}")
            cursor.execute(f"CREATE TABLE {_q(shadow)} "
                           f"(LIKE {_q(model._meta.db_table)} INCLUDING ALL)")


def _lock(tables: dict[type[Model], str]) -> None:
    """Wait for every transaction that touched the live tables; hold off the next ones.

    A writer may touch these tables in another order than the lock takes them: the lock gives
    up first (its timeout is below the server's deadlock_timeout, 1 s by default), so it is
    the rebuild that tries again, never the writer that fails.
    """
    live = ", ".join(_q(model._meta.db_table) for model in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT_MS}ms'")
        cursor.execute(f"LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SET LOCAL lock_timeout = 0")


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _swap(tables: dict[type[Model], str]) -> None:
    """Drop the live tables and give each shadow its live name, its indexes theirs."""
    with connection.cursor() as cursor:
        for model, shadow in tables.items():
            live = model._meta.db_table
            names = _index_names(cursor, live, shadow)
            cursor.execute(f"DROP TABLE {_q(live)}")
            for shadow_index, live_index in names.items():
                cursor.execute(f"ALTER INDEX {_q(shadow_index)} RENAME TO {_q(live_index)}")
            cursor.execute(f"ALTER TABLE {_q(shadow)} RENAME TO {_q(live)}")


def _index_names(cursor, live: str, shadow: str) -> dict[str, str]:  # noqa: ANN001
    """Each shadow index's live counterpart (same definition), so migrations find them."""
    def indexes(table: str) -> dict[str, list[str]]:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
            "ORDER BY c.relname", [table])
        found: dict[str, list[str]] = {}
        for name, definition in cursor.fetchall():
            head, _, body = definition.partition(" USING ")
            found.setdefault(f"{head.startswith('CREATE UNIQUE')} {body}", []).append(name)
        return found

    theirs, ours = indexes(live), indexes(shadow)
    if sorted(theirs) != sorted(ours):
        raise RuntimeError(f"{shadow} does not have the indexes of {live}")
    return {mine: their for key in ours
            for mine, their in zip(ours[key], theirs[key], strict=True)}


class RebuildIncomplete(RuntimeError):
    """A rebuild could not reach the events that were committed when it began."""
