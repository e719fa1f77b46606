"""Event types and small helpers the event-log tests share."""

import uuid
from dataclasses import dataclass

from django.db import connection

from eventlog.schema import event
from eventlog.store import Stream, append


@event("WidgetMade")
@dataclass(frozen=True)
class WidgetMade:
    size: int


@event("WidgetPainted", version=2)
@dataclass(frozen=True)
class WidgetPainted:
    colour: str
    finish: str


def widget(tenant_id: uuid.UUID | None = None) -> Stream:
    """A new widget stream in a (new) tenant."""
    return Stream.of(tenant_id or uuid.uuid4(), "widget", uuid.uuid4())


def append_closing(stream: Stream, expected_version: int, events: list) -> list:
    """Append from a worker thread and close that thread's connection afterwards."""
    try:
        return append(stream, expected_version, events)
    finally:
        connection.close()
