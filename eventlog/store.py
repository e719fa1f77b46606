"""Appending to streams and reading them back: the only way anything changes state.

`append` checks the expected version, inserts the events, runs the inline projections in the
same transaction and, after commit, wakes the live stream. Readers that follow the whole log
by position (`read_log`) never return a position that a later commit could precede.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction

from core import context
from core.errors import VersionConflict
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


def append(stream: Stream, expected_version: int, events: Sequence[object],
           *, metadata: dict[str, Any] | None = None) -> list[RecordedEvent]:
    """Append events to a stream at `expected_version` (0 for a new stream).

    Raises VersionConflict (409) when the stream has moved on. Inline projections run in the
    same transaction; subscribers are woken after commit.
    """
    if not events:
        return []
    meta = {**context.current().as_dict(), **(metadata or {})}
    with transaction.atomic(savepoint=False):
        current = (Event.objects.filter(stream_id=stream.id)
                   .order_by("-version").values_list("version", flat=True).first()) or 0
        if current != expected_version:
            raise VersionConflict(
                f"{stream.type} {stream.id} is at version {current}, not {expected_version}; "
                "reload it and try again."
            )
        rows = [
            Event(
                tenant_id=stream.tenant_id, stream_type=stream.type, stream_id=stream.id,
                version=expected_version + offset, type=schema.type_name(payload),
                schema_version=schema.current_version(schema.type_name(payload)),
                data=schema.to_data(payload), metadata=meta,
            )
            for offset, payload in enumerate(events, start=1)
        ]
        try:
            Event.objects.bulk_create(rows)
        except IntegrityError as exc:
            if "eventlog_stream_version" in str(exc) or "UNIQUE" in str(exc):
                raise VersionConflict(
                    f"{stream.type} {stream.id} was changed concurrently; reload it and try again."
                ) from exc
            raise
        result = [recorded(row) for row in rows]

        from eventlog import projections, realtime  # imported late: both import this module

        projections.apply_inline(result)
        transaction.on_commit(partial(realtime.notify_committed, stream.tenant_id))
    return result


def load_stream(stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
    """Every event of one stream in version order (for rebuilding an aggregate)."""
    rows = Event.objects.filter(stream_id=str(stream_id), version__gt=after_version)
    return [recorded(row) for row in rows.order_by("version")]


def read_log(*, after: int = 0, limit: int = 100, tenant_id: object = None,
             stream_type: str | None = None, stream_id: str | None = None,
             types: Iterable[str] | None = None) -> list[RecordedEvent]:
    """Events after a position in log order, never skipping one that commits late."""
    rows = Event.objects.filter(position__gt=after)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    if stream_type:
        rows = rows.filter(stream_type=stream_type)
    if stream_id:
        rows = rows.filter(stream_id=str(stream_id))
    if types is not None:
        rows = rows.filter(type__in=list(types))
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
