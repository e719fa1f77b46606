"""Appending to streams and reading them back: the only way anything changes state.

`append` checks the expected version, inserts the events, runs the inline projections in the
same transaction and, after commit, wakes the live stream. Readers that follow the whole log
by position (`read_log`) never return a position that a later commit could precede.
"""

import functools
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.utils import timezone

from core import context
from core.errors import VersionConflict
from core.telemetry import metrics
from eventlog import guards, schema
from eventlog.models import Event


@dataclass(frozen=True)
class Stream:
    """Where an aggregate's events live: a tenant, a kind of object and its id."""

    tenant_id: uuid.UUID
    type: str
    id: str

    @classmethod
    def of(cls, tenant_id: uuid.UUID | str, stream_type: str, stream_id: object) -> "Stream":
        """A stream from loose parts (ids may be UUIDs or strings)."""
        return cls(uuid.UUID(str(tenant_id)), stream_type, str(stream_id))


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored, with its data upcast to the current schema."""

    position: int
    tenant_id: uuid.UUID
    stream_type: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def payload(self) -> object:
        """The event as an instance of its registered dataclass."""
        return schema.instantiate(self.type, self.data)

    @functools.cached_property
    def public_json(self) -> str:
        """`as_public()` as JSON text, computed once however many sockets receive the event."""
        return json.dumps(self.as_public(), separators=(",", ":"), cls=DjangoJSONEncoder)

    def as_public(self) -> dict[str, Any]:
        """The shape clients see in the REST feed and on the websocket (API.md)."""
        return {
            "position": self.position,
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "version": self.version,
            "type": self.type,
            "data": self.data,
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
        }


def recorded(row: Event) -> RecordedEvent:
    """A stored row as a RecordedEvent, upcast."""
    version, data = schema.upcast(row.type, row.schema_version, row.data)
    return RecordedEvent(
        position=row.position, tenant_id=row.tenant_id, stream_type=row.stream_type,
        stream_id=row.stream_id, version=row.version, type=row.type, schema_version=version,
        data=data, metadata=row.metadata, recorded_at=row.recorded_at,
    )


_COLUMNS = ("tenant_id", "stream_type", "stream_id", "version", "type", "schema_version", "data",
            "metadata", "recorded_at")
_PG_CASTS = ("uuid", "varchar", "varchar", "integer", "varchar", "smallint", "jsonb", "jsonb",
             "timestamptz")


@functools.lru_cache(maxsize=64)
def _insert_sql(vendor: str, count: int) -> str:
    """One INSERT that writes the events only if the stream is still at the expected version.

    On PostgreSQL it also numbers the rows within the transaction's position block itself,
    which spares a trigger call per row.
    """
    columns = ", ".join(_COLUMNS)
    head = "(SELECT coalesce(max(version), 0) FROM eventlog_event WHERE stream_id = %s) = %s"
    if vendor == "postgresql":
        row = "(%s::integer, " + ", ".join(f"%s::{cast}" for cast in _PG_CASTS) + ")"
        return (
            f"WITH tx AS ({guards.POSTGRES_TX_BLOCK}), "  # noqa: S608 - no user input
            f"claim AS (SELECT {guards.POSTGRES_CLAIM.format(count=count)} FROM tx) "
            f"INSERT INTO eventlog_event (position, {columns}) "
            f"SELECT tx.base + tx.n + v.idx, {', '.join('v.' + c for c in _COLUMNS)} "
            f"FROM tx, claim, (VALUES {', '.join([row] * count)}) AS v (idx, {columns}) "
            f"WHERE {head} RETURNING version, position"
        )
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO eventlog_event ({columns}) "  # noqa: S608 - no user input
        f"SELECT * FROM (VALUES {', '.join([row] * count)}) AS v "
        f"WHERE {head} RETURNING version, position"
    )


def _execute_insert(db: BaseDatabaseWrapper, sql: str, params: list[Any]) -> list[tuple]:
    """Run the insert; on PostgreSQL with server-side binding so the statement is prepared once."""
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    import psycopg

    db.ensure_connection()
    raw = db.connection
    cursor = getattr(raw, "_eventlog_cursor", None)
    if cursor is None or cursor.closed:
        cursor = raw._eventlog_cursor = psycopg.Cursor(raw)
    try:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()
    except psycopg.errors.UniqueViolation as exc:
        raise IntegrityError(str(exc)) from exc


def _row_params(db: BaseDatabaseWrapper, index: int, row: dict[str, Any]) -> list[Any]:
    if db.vendor == "postgresql":
        return [index, row["tenant_id"], row["stream_type"], row["stream_id"], row["version"],
                row["type"], row["schema_version"], json.dumps(row["data"], cls=DjangoJSONEncoder),
                json.dumps(row["metadata"]), row["recorded_at"]]
    return [Event._meta.get_field(name).get_db_prep_save(row[name], db) for name in _COLUMNS]


def _insert(db: BaseDatabaseWrapper, stream: Stream, expected_version: int,
            events: Sequence[object], meta: dict[str, Any]) -> list[RecordedEvent]:
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    params: list[Any] = []
    for offset, payload in enumerate(events):
        name = schema.type_name(payload)
        row = {"tenant_id": stream.tenant_id, "stream_type": stream.type, "stream_id": stream.id,
               "version": expected_version + offset + 1, "type": name,
               "schema_version": schema.current_version(name), "data": schema.to_data(payload),
               "metadata": meta, "recorded_at": now}
        rows.append(row)
        params += _row_params(db, offset, row)
    params += [stream.id, expected_version]
    try:
        inserted = _execute_insert(db, _insert_sql(db.vendor, len(rows)), params)
    except IntegrityError as exc:
        raise VersionConflict(
            f"{stream.type} {stream.id} was changed concurrently; reload it and try again."
        ) from exc
    if not inserted:
        current = (Event.objects.filter(stream_id=stream.id).order_by("-version")
                   .values_list("version", flat=True).first()) or 0
        raise VersionConflict(
            f"{stream.type} {stream.id} is at version {current}, not {expected_version}; "
            "reload it and try again."
        )
    positions = dict(inserted)
    return [RecordedEvent(position=positions[row["version"]], **row) for row in rows]


def append(stream: Stream, expected_version: int, events: Sequence[object],
           *, metadata: dict[str, Any] | None = None) -> list[RecordedEvent]:
    """Append events to a stream at `expected_version` (0 for a new stream).

    Raises VersionConflict (409) when the stream has moved on. Inline projections run in the
    same transaction; subscribers are woken after commit.
    """
    if not events:
        return []
    from eventlog import projections, realtime  # imported late: both import this module

    db = connections[DEFAULT_DB_ALIAS]
    meta = {**context.current().as_dict(), **(metadata or {})}
    types = {schema.type_name(payload) for payload in events}
    if db.vendor == "postgresql" and db.get_autocommit() and not projections.handles_any(types):
        # A single statement is its own transaction: no BEGIN/COMMIT round trips needed.
        result = _insert(db, stream, expected_version, events, meta)
        realtime.notify_committed(stream.tenant_id)
        _count(stream, result)
        return result
    with transaction.atomic(savepoint=False):
        result = _insert(db, stream, expected_version, events, meta)
        projections.apply_inline(result)
        transaction.on_commit(functools.partial(realtime.notify_committed, stream.tenant_id))
    _count(stream, result)
    return result


def _count(stream: Stream, appended: list[RecordedEvent]) -> None:
    # The append rate and the log's head for /metrics (inside an outer transaction that later
    # rolls back, the events are counted all the same).
    metrics.EVENTS_APPENDED.labels(stream.type).inc(len(appended))
    metrics.LOG_HEAD.set(appended[-1].position)


def load_stream(stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
    """Every event of one stream in version order (for rebuilding an aggregate)."""
    rows = Event.objects.filter(stream_id=str(stream_id), version__gt=after_version)
    return [recorded(row) for row in rows.order_by("version")]


def read_log(*, after: int = 0, limit: int = 100, tenant_id: object = None,
             stream_type: str | None = None, stream_id: str | None = None,
             types: Iterable[str] | None = None,
             exclude: Q | None = None) -> list[RecordedEvent]:
    """Events after a position in log order, never skipping one that commits late.

    `exclude` leaves out matching events in the query itself, so a page still holds up to
    `limit` of the others.
    """
    rows = Event.objects.filter(position__gt=after)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    if stream_type:
        rows = rows.filter(stream_type=stream_type)
    if stream_id:
        rows = rows.filter(stream_id=str(stream_id))
    if types is not None:
        rows = rows.filter(type__in=list(types))
    if exclude is not None:
        rows = rows.exclude(exclude)
    horizon = guards.safe_horizon_sql(connection)
    if horizon is not None:
        rows = rows.extra(where=[f"position < {horizon}"])  # noqa: S610 - constant SQL
    return [recorded(row) for row in rows.order_by("position")[:limit]]


def log_head(tenant_id: object) -> int:
    """The highest position of a tenant's events that a reader may return now (0 if none)."""
    rows = Event.objects.filter(tenant_id=tenant_id)
    horizon = guards.safe_horizon_sql(connection)
    if horizon is not None:
        rows = rows.extra(where=[f"position < {horizon}"])  # noqa: S610 - constant SQL
    return rows.order_by("-position").values_list("position", flat=True).first() or 0


def events_after_exceed(tenant_id: object, after: int, count: int) -> bool:
    """True when the tenant has more than `count` events after `after` (a cheap bounded probe)."""
    rows = Event.objects.filter(tenant_id=tenant_id, position__gt=after).order_by("position")
    return rows[count:count + 1].exists()
