"""Projections turn events into read models.

An inline projection runs inside the append transaction (read-your-writes for the API). Every
projection also has a checkpoint, the position it has been caught up to by `catch_up`, which
is how a rebuild replays the whole log into empty read models:

    class ProjectList(Projection):
        name = "accounts.projects"
        event_types = {"ProjectCreated", "ProjectRenamed", "ProjectArchived"}
        models = [Project]

        def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None: ...

    projections.register(ProjectList())

A projection that folds changes the rows of a `rowfold.Batch` (one per batch of events, written
with set-based statements); the same `handle_batch` serves inline appends, catch-up and
rebuilds, so they cannot disagree. A projection may instead write per event in `handle`.
Rebuilds are in `eventlog.rebuild`.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from django.db import transaction
from django.db.models import Model

from eventlog import rebuild as rebuilding
from eventlog import rowfold
from eventlog.models import ProjectionCheckpoint
from eventlog.rebuild import RebuildIncomplete  # noqa: F401  (raised by rebuild)
from eventlog.records import RecordedEvent, read_log

_registry: dict[str, "Projection"] = {}


class Projection:
    """One read model (or a few that change together) built from some event types."""

    name: ClassVar[str]
    event_types: ClassVar[set[str]]
    models: ClassVar[Sequence[type[Model]]] = ()
    inline: ClassVar[bool] = True

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        """Change the batch's rows for one event (a projection that folds overrides this)."""
        raise NotImplementedError

    def prepare(self, events: Sequence[RecordedEvent], rows: rowfold.Batch) -> None:
        """Load the stored rows a batch will change in a few queries (optional)."""

    @property
    def folds(self) -> bool:
        """Whether this projection writes batches through `fold` (else one event at a time)."""
        return type(self).fold is not Projection.fold

    def handle(self, event: RecordedEvent) -> None:
        """One event; a projection that folds handles it as a batch of one."""
        if not self.folds:
            raise NotImplementedError
        self.handle_batch([event])

    def handle_batch(self, events: Sequence[RecordedEvent], *,
                     tables: Mapping[type[Model], str] | None = None) -> None:
        """Several events in log order, into the live tables or the ones `tables` names."""
        if not self.folds:
            if tables:
                raise ValueError(f"{self.name} does not fold: it writes its live tables only")
            for event in events:
                self.handle(event)
            return
        if not events:
            return
        rows = rowfold.Batch(self.models, tables)
        self.prepare(events, rows)
        for event in events:
            self.fold(event, rows)
        rows.write()

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


def rebuild(names: Iterable[str] | None = None, **options: object) -> dict[str, int]:
    """Replay the whole log into these projections' read models (all by default); events
    handled per name. The options and the shadow tables are `eventlog.rebuild.replay_all`'s."""
    wanted = None if names is None else set(names)
    chosen = [p for p in registered() if wanted is None or p.name in wanted]
    return rebuilding.replay_all(chosen, **options)
