"""Policies: reactions of one app to another app's events, as followers of the log.

A policy is a non-inline projection that writes no read model: for each event of its types
after its checkpoint it calls a command of its own app. The command's appends and the new
checkpoint commit in one transaction, so a crash does both or neither and every event gets its
reaction exactly once:

    class EvaluateAfterTraining(Policy):
        name = "evaluation.after_training"
        event_types = {"TaskSucceeded"}

        def react(self, event: RecordedEvent) -> None: ...

    policies.register(EvaluateAfterTraining())

A command that refuses because the state moved on (the task already ended: WrongState,
NotFound) counts as the reaction; any other error stops the policy at that event (logged) and
the next run tries it again. Policies are not projections: a rebuild never replays them, and
their checkpoints (`policy:<name>`) survive it. A policy added to a running install starts at
the log's head (its app's migration writes its checkpoint there), not at the first event.

The scheduler follows every policy each EVENTS_POLL_INTERVAL_S (`serve` runs the scheduler
in-process); tests call `follow_all()` or run `tests.workers.stub_worker`, which follows too.
"""

import logging
from typing import ClassVar

from django.db import migrations, transaction
from django.db.models import Max

from core.errors import NotFound, WrongState
from eventlog.models import ProjectionCheckpoint
from eventlog.store import RecordedEvent, read_log

log = logging.getLogger(__name__)

# A command refusing with one of these has nothing left to do: the reaction is done.
MOVED_ON: tuple[type[Exception], ...] = (WrongState, NotFound)

_registry: dict[str, "Policy"] = {}


class Policy:
    """A reaction to some event types: `react` calls a command of the policy's app."""

    name: ClassVar[str]
    event_types: ClassVar[set[str]]

    def react(self, event: RecordedEvent) -> None:
        """Call the app's command for one event (inside the follower's transaction)."""
        raise NotImplementedError

    @property
    def checkpoint_name(self) -> str:
        """Its row in the checkpoints table, apart from the projections' names."""
        return checkpoint_name(self.name)


def checkpoint_name(name: str) -> str:
    """The checkpoint row of the policy called `name`."""
    return f"policy:{name}"


def starting_at_head(*names: str) -> migrations.RunPython:
    """The migration step that adds policies: their checkpoints at the log's current head, so
    an install with history does not react to its old events."""

    def forward(apps: object, schema_editor: object) -> None:
        event = apps.get_model("eventlog", "Event")
        checkpoint = apps.get_model("eventlog", "ProjectionCheckpoint")
        head = event.objects.aggregate(last=Max("position"))["last"] or 0
        for name in names:
            checkpoint.objects.get_or_create(name=checkpoint_name(name),
                                             defaults={"position": head})

    return migrations.RunPython(forward, migrations.RunPython.noop)


def register(policy: Policy) -> Policy:
    """Add a policy to the registry (once per name)."""
    _registry[policy.name] = policy
    return policy


def registered() -> list[Policy]:
    """All policies, in registration order."""
    return list(_registry.values())


def follow(policy: Policy, *, batch: int = 100) -> int:
    """React to every event after the policy's checkpoint; returns how many reactions ran.

    Stops early at an event whose reaction failed (it is tried again at the next call).
    """
    reacted = 0
    while True:
        with transaction.atomic():
            # The row lock makes concurrent followers of one policy take turns.
            checkpoint, _ = ProjectionCheckpoint.objects.select_for_update().get_or_create(
                name=policy.checkpoint_name)
            events = read_log(after=checkpoint.position, limit=batch,
                              types=sorted(policy.event_types))
            if not events:
                return reacted
            failed = False
            for event in events:
                try:
                    with transaction.atomic():  # a failed reaction leaves nothing behind
                        policy.react(event)
                except MOVED_ON as exc:
                    log.info("policy %s: event %s needs nothing more (%s)", policy.name,
                             event.position, exc)
                except Exception:
                    log.exception("policy %s stopped at event %s; it is tried again",
                                  policy.name, event.position)
                    failed = True
                    break
                checkpoint.position = event.position
                reacted += 1
            checkpoint.save(update_fields=["position"])
        if failed:
            return reacted


def follow_all() -> dict[str, int]:
    """Follow every policy to the log's head; reactions per policy (-1: it failed)."""
    done = {}
    for policy in registered():
        try:
            done[policy.name] = follow(policy)
        except Exception:  # e.g. the database is away: the next tick tries again
            log.exception("policy %s could not be followed", policy.name)
            done[policy.name] = -1
    return done
