"""The event log's values and readers: streams, recorded events, and reading by stream or by
position. Readers that follow the whole log by position (`read_log`) never return a position
that a later commit could precede. Writing is `eventlog.store.append`.
"""

import functools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Q

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

    @functools.cached_property
    def socket_text(self) -> str:
        """The websocket message of this event, built once per process for all its sockets."""
        return '{"type":"event","event":' + self.public_json + "}"

    def as_public(self) -> dict[str, Any]:
        """The shape clients see in the REST feed and on the websocket (docs/live-events.md)."""
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
