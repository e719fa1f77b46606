"""Appending to streams: the only way anything changes state.

`append` checks the expected version, inserts the events, runs the inline projections in the
same transaction and, after commit, wakes the live stream. The values and readers it shares
with them (`Stream`, `RecordedEvent`, `read_log`, ...) are `eventlog.records`, named here too.
"""

import functools
import json
from collections.abc import Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from core import context
from core.errors import VersionConflict
from core.telemetry import metrics
from eventlog import guards, projections, realtime, schema
from eventlog.models import Event
from eventlog.records import (
    RecordedEvent,
    Stream,
    events_after_exceed,
    load_stream,
    log_head,
    read_log,
    recorded,
)

# The readers and the event values live in eventlog.records (projections and the live stream
# read with them, and the append calls those); they are named here too, as the store's API.
__all__ = ["RecordedEvent", "Stream", "append", "events_after_exceed", "load_stream",
           "log_head", "read_log", "recorded"]


_COLUMNS = ("tenant_id", "stream_type", "stream_id", "version", "type", "schema_version", "data",
            "metadata", "recorded_at")
_ENCODE = DjangoJSONEncoder().encode  # json.dumps(cls=...) would build an encoder per event
_HEAD = ("(SELECT coalesce(max(version), 0) FROM eventlog_event WHERE stream_id = {sid}) "
         "= {expected}")


def _postgres_insert_sql(*, in_transaction: bool) -> str:
    """The one INSERT of any number of events on PostgreSQL: the per-event values travel as
    three arrays, so the statement text never changes and is prepared once per connection.
    The arrays go in binary (`%(name)b`): text arrays of JSON would be escaped element by
    element on the client (a fifth of an append's client CPU).

    It writes only if the stream is still at the expected version, and numbers the rows in the
    transaction's position block itself (sparing the trigger). A statement that is its own
    transaction (autocommit) starts the block: no count of earlier events to read or claim.
    """
    block = guards.POSTGRES_TX_BLOCK if in_transaction else (
        f"SELECT (pg_current_xact_id()::text::bigint << {guards.POSITION_SHIFT}) AS base, 0 AS n")
    count = "cardinality(%(types)b::varchar[])"
    claim = (f", claim AS (SELECT {guards.POSTGRES_CLAIM.format(count=count)} FROM tx)"  # noqa: S608
             if in_transaction else "")
    head = _HEAD.format(sid="%(stream_id)s", expected="%(expected)s")
    # Past the block's last position the next transaction's block begins: refuse (the failed
    # cast names the count; SQL has no RAISE, and a CASE evaluates only the branch taken).
    limit = guards.MAX_EVENTS_PER_TRANSACTION
    position = (f"CASE WHEN tx.n + v.idx <= {limit} THEN tx.base + tx.n + v.idx - 1 ELSE "
                f"('eventlog: more than {limit} events in one transaction: ' "
                "|| (tx.n + v.idx))::bigint END")
    return (
        f"WITH tx AS ({block}){claim} "  # noqa: S608 - no user input
        f"INSERT INTO eventlog_event (position, {', '.join(_COLUMNS)}) "
        f"SELECT {position}, %(tenant_id)s::uuid, %(stream_type)s::varchar, "
        "%(stream_id)s::varchar, %(expected)s::integer + v.idx::integer, v.type, v.sv, "
        "v.data::jsonb, %(metadata)s::jsonb, %(recorded_at)s::timestamptz "
        f"FROM tx{', claim' if in_transaction else ''}, unnest(%(types)b::varchar[], "
        "%(versions)b::smallint[], %(data)b::text[]) WITH ORDINALITY AS v (type, sv, data, idx) "
        f"WHERE {head} RETURNING version, position"
    )


_POSTGRES_INSERT = {mode: _postgres_insert_sql(in_transaction=mode) for mode in (False, True)}


@functools.lru_cache(maxsize=64)
def _sqlite_insert_sql(count: int) -> str:
    """One INSERT of `count` events that writes only if the stream is at the expected version."""
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO eventlog_event ({', '.join(_COLUMNS)}) "  # noqa: S608 - no user input
        f"SELECT * FROM (VALUES {', '.join([row] * count)}) AS v "
        f"WHERE {_HEAD.format(sid='%s', expected='%s')} RETURNING version, position"
    )


def _execute_postgres(db: BaseDatabaseWrapper, params: dict[str, Any]) -> list[tuple]:
    """Run the insert with server-side binding, so the statement is prepared once."""
    import psycopg

    db.ensure_connection()
    raw = db.connection
    cursor = getattr(raw, "_eventlog_cursor", None)
    if cursor is None or cursor.closed:
        cursor = raw._eventlog_cursor = psycopg.Cursor(raw)
    with db.wrap_database_errors:  # psycopg's errors as Django's (IntegrityError...)
        cursor.execute(_POSTGRES_INSERT[not db.get_autocommit()], params, prepare=True)
        return cursor.fetchall()


def _execute_sqlite(db: BaseDatabaseWrapper, rows: list[dict[str, Any]], stream: Stream,
                    expected_version: int) -> list[tuple]:
    fields = [Event._meta.get_field(name) for name in _COLUMNS]
    params = [field.get_db_prep_save(row[field.name], db) for row in rows for field in fields]
    with db.cursor() as cursor:
        cursor.execute(_sqlite_insert_sql(len(rows)), [*params, stream.id, expected_version])
        return cursor.fetchall()


def _insert(db: BaseDatabaseWrapper, stream: Stream, expected_version: int,
            events: Sequence[object], meta: dict[str, Any]) -> list[RecordedEvent]:
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for offset, payload in enumerate(events):
        name = schema.type_name(payload)
        rows.append({"tenant_id": stream.tenant_id, "stream_type": stream.type,
                     "stream_id": stream.id, "version": expected_version + offset + 1,
                     "type": name, "schema_version": schema.current_version(name),
                     "data": schema.to_data(payload), "metadata": meta, "recorded_at": now})
    try:
        if db.vendor == "postgresql":
            inserted = _execute_postgres(db, {
                "tenant_id": stream.tenant_id, "stream_type": stream.type,
                "stream_id": stream.id, "expected": expected_version,
                "types": [row["type"] for row in rows],
                "versions": [row["schema_version"] for row in rows],
                "data": [_ENCODE(row["data"]) for row in rows],
                "metadata": json.dumps(meta), "recorded_at": now})
        else:
            inserted = _execute_sqlite(db, rows, stream, expected_version)
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


@functools.lru_cache(maxsize=256)
def _context_metadata(current: context.Metadata) -> dict[str, str]:
    """`as_dict()` of a (frozen) context once: a worker appends many times in one context."""
    return current.as_dict()


def append(stream: Stream, expected_version: int, events: Sequence[object],
           *, metadata: dict[str, Any] | None = None) -> list[RecordedEvent]:
    """Append events to a stream at `expected_version` (0 for a new stream).

    Raises VersionConflict (409) when the stream has moved on. Inline projections run in the
    same transaction; subscribers are woken after commit.
    """
    if not events:
        return []
    if len(events) > guards.MAX_EVENTS_PER_TRANSACTION:
        raise ValueError(f"at most {guards.MAX_EVENTS_PER_TRANSACTION} events in one append")

    db = connections[DEFAULT_DB_ALIAS]
    meta = {**_context_metadata(context.current()), **(metadata or {})}
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
