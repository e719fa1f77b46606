"""Projections turn events into read models.

An inline projection runs inside the append transaction (read-your-writes for the API). Every
projection also has a checkpoint, the position it has been caught up to by `catch_up`, which
is how a rebuild replays the whole log into empty read models:

    class ProjectList(Projection):
        name = "accounts.projects"
        event_types = {"ProjectCreated", "ProjectRenamed", "ProjectArchived"}
        models = [Project]

        def handle(self, event: RecordedEvent) -> None: ...

    projections.register(ProjectList())
"""

import time
from collections.abc import Iterable, Sequence
from typing import ClassVar

from django.db import transaction
from django.db.models import Max, Model

from eventlog.models import Event, ProjectionCheckpoint
from eventlog.store import RecordedEvent, read_log

_registry: dict[str, "Projection"] = {}


class Projection:
    """One read model (or a few that change together) built from some event types."""

    name: ClassVar[str]
    event_types: ClassVar[set[str]]
    models: ClassVar[Sequence[type[Model]]] = ()
    inline: ClassVar[bool] = True

    def handle(self, event: RecordedEvent) -> None:
        raise NotImplementedError

    def handle_batch(self, events: Sequence[RecordedEvent]) -> None:
        """Several events in log order; override to write them in fewer statements."""
        for event in events:
            self.handle(event)

    def reset(self) -> None:
        """Empty the read models before a rebuild; children first, so foreign keys hold."""
        for model in reversed(list(self.models)):
            model._base_manager.all().delete()


def register(projection: Projection) -> Projection:
    """Add a projection to the registry (once per name)."""
    _registry[projection.name] = projection
    return projection


def registered() -> list[Projection]:
    """All projections, in registration order."""
    return list(_registry.values())


def handles_any(event_types: Iterable[str]) -> bool:
    """Whether an inline projection wants any of these event types."""
    wanted = set(event_types)
    return any(p.inline and p.event_types & wanted for p in _registry.values())


def apply_inline(events: Iterable[RecordedEvent]) -> None:
    """Run the inline projections for freshly appended events (inside the append transaction)."""
    events = list(events)
    for projection in _registry.values():
        if projection.inline:
            mine = [event for event in events if event.type in projection.event_types]
            if mine:
                projection.handle_batch(mine)


def catch_up(projection: Projection, *, batch: int = 500) -> int:
    """Feed a projection every event after its checkpoint; returns how many it handled."""
    handled = 0
    while True:
        with transaction.atomic():
            checkpoint, _ = ProjectionCheckpoint.objects.select_for_update().get_or_create(
                name=projection.name
            )
            events = read_log(after=checkpoint.position, limit=batch,
                              types=sorted(projection.event_types))
            projection.handle_batch(events)
            if not events:
                return handled
            checkpoint.position = events[-1].position
            checkpoint.save(update_fields=["position"])
            handled += len(events)


def rebuild(names: Iterable[str] | None = None, *, wait_s: float = 60.0) -> dict[str, int]:
    """Empty read models and replay the whole log into them; returns events handled per name.

    Readers hold back events behind any open transaction (on PostgreSQL, in any database of
    the server), so a replay stopping at the first empty read could leave read models short.
    The replay goes on until it has reached every event committed when it began, waiting up to
    `wait_s` for old transactions to end, else it raises RebuildIncomplete.
    """
    chosen = [p for p in registered() if names is None or p.name in set(names)]
    handled = {}
    for projection in chosen:
        with transaction.atomic():
            projection.reset()
            ProjectionCheckpoint.objects.update_or_create(name=projection.name,
                                                          defaults={"position": 0})
        target = Event.objects.filter(type__in=sorted(projection.event_types)).aggregate(
            last=Max("position"))["last"] or 0
        deadline = time.monotonic() + wait_s
        handled[projection.name] = catch_up(projection)
        while ProjectionCheckpoint.objects.get(name=projection.name).position < target:
            if time.monotonic() > deadline:
                raise RebuildIncomplete(
                    f"{projection.name} replayed up to "
                    f"{ProjectionCheckpoint.objects.get(name=projection.name).position} of "
                    f"{target}: a transaction open for over {wait_s:.0f} s holds readers "
                    "back; end it and rebuild again.")
            time.sleep(0.05)
            handled[projection.name] += catch_up(projection)
    return handled


class RebuildIncomplete(RuntimeError):
    """A rebuild could not reach the events that were committed when it began."""
