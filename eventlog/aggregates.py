"""Aggregates: an object's state rebuilt from its stream, used by commands to check rules.

    class ProjectAggregate(Aggregate):
        stream_type = "project"

        def when_ProjectCreated(self, data: dict) -> None:
            self.name = data["name"]

Each event is applied by the method `when_<EventType>`, if the aggregate has one.

A command whose stream other writers extend at any moment (a worker's progress beside a user's
stop) runs through `retry_on_conflict`: its load, rules and append again from the new head.
"""

import uuid
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

from django.db import transaction

from core.errors import NotFound, VersionConflict, WrongState
from eventlog.store import RecordedEvent, Stream, append, load_stream

T = TypeVar("T")

CONFLICT_ATTEMPTS = 5


def retry_on_conflict(command: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run `command` (load, check, append); run it again from a fresh load when another writer
    appended first, so its rules are checked against what is there. Each attempt is atomic (a
    savepoint inside the caller's transaction), so a conflict leaves nothing to roll back."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return command()
        except VersionConflict:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


class Aggregate:
    """State of one stream at `version`; `load` replays it, `append` extends it."""

    stream_type: ClassVar[str]
    not_found_message: ClassVar[str] = "Not found."

    def __init__(self, tenant_id: uuid.UUID | str, stream_id: object):
        self.stream = Stream.of(tenant_id, self.stream_type, stream_id)
        self.version = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @classmethod
    def load(cls, tenant_id: uuid.UUID | str, stream_id: object, *, must_exist: bool = True
             ) -> Self:
        """Replay a stream; another tenant's stream is NotFound, exactly like a missing one."""
        aggregate = cls(tenant_id, stream_id)
        for event in load_stream(aggregate.stream.id):
            foreign = event.tenant_id != aggregate.stream.tenant_id
            if foreign or event.stream_type != cls.stream_type:
                raise NotFound(cls.not_found_message)
            aggregate.apply(event)
        if must_exist and not aggregate.exists:
            raise NotFound(cls.not_found_message)
        return aggregate

    def apply(self, event: RecordedEvent) -> None:
        """Fold one event into the state."""
        handler = getattr(self, f"when_{event.type}", None)
        if handler is not None:
            handler(event.data)
        self.version = event.version

    def append(self, *events: object) -> list[RecordedEvent]:
        """Append events at the loaded version and fold them in."""
        recorded_events = append(self.stream, self.version, list(events))
        for event in recorded_events:
            self.apply(event)
        return recorded_events

    def require(self, condition: bool, message: str,
                error: type[WrongState] = WrongState) -> None:
        """Refuse the command with 409 (`error`'s code) when a rule does not hold."""
        if not condition:
            raise error(message)
