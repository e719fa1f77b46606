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
the next run tries it again. After EVENTLOG_POLICY_MAX_ATTEMPTS failures in a row on one event
the policy records it as a dead letter and goes on past it, so one poisoned event never holds
back every later reaction; `manage.py policies` lists, retries and dismisses dead letters.
Policies are not projections: a rebuild never replays them, and their checkpoints
(`policy:<name>`) survive it. A policy added to a running install starts at the log's head
(its app's migration writes its checkpoint there), not at the first event.

The scheduler follows every policy each EVENTS_POLL_INTERVAL_S (`serve` runs the scheduler
in-process); tests call `follow_all()` or run `tests.workers.stub_worker`, which follows too.
"""

import logging
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import migrations, transaction
from django.db.models import Max
from django.utils import timezone

from core.errors import NotFound, WrongState
from eventlog.models import Event, PolicyDeadLetter, ProjectionCheckpoint
from eventlog.records import RecordedEvent, read_log, recorded

log = logging.getLogger(__name__)

# A command refusing with one of these has nothing left to do: the reaction is done.
MOVED_ON: tuple[type[Exception], ...] = (WrongState, NotFound)

_registry: dict[str, "Policy"] = {}
# (policy, position) -> failures in a row, in this process: the scheduler is the one follower
# in production, and a restart giving an event a few more tries is harmless.
_failures: dict[tuple[str, int], int] = {}


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
                except Exception as exc:
                    attempts = _failures.get((policy.name, event.position), 0) + 1
                    _failures[(policy.name, event.position)] = attempts
                    if attempts < settings.EVENTLOG_POLICY_MAX_ATTEMPTS:
                        log.exception("policy %s stopped at event %s (attempt %d of %d); it "
                                      "is tried again", policy.name, event.position, attempts,
                                      settings.EVENTLOG_POLICY_MAX_ATTEMPTS)
                        failed = True
                        break
                    log.exception("policy %s gave up on event %s after %d attempts: a dead "
                                  "letter, see `manage.py policies`", policy.name,
                                  event.position, attempts)
                    _record_dead_letter(policy, event, exc, attempts)
                _failures.pop((policy.name, event.position), None)
                checkpoint.position = event.position
                reacted += 1
            checkpoint.save(update_fields=["position"])
        if failed:
            return reacted


def _record_dead_letter(policy: Policy, event: RecordedEvent, exc: Exception,
                        attempts: int) -> None:
    PolicyDeadLetter.objects.get_or_create(
        policy=policy.name, position=event.position,
        defaults={"tenant_id": event.tenant_id, "stream_type": event.stream_type,
                  "stream_id": event.stream_id, "event_type": event.type,
                  "error": f"{type(exc).__name__}: {exc}"[:2000], "attempts": attempts})


class DeadLetterRetryFailed(RuntimeError):
    """The reaction failed again; the dead letter stays open with the new error."""


def retry_dead_letter(letter_id: int) -> str:
    """React to a dead letter's event once more: "retried" when the reaction ran (or the state
    had moved on), "already <resolution>" when it was resolved before; raises
    DeadLetterRetryFailed (and records the error) when it fails again."""
    with transaction.atomic():
        letter = PolicyDeadLetter.objects.select_for_update().get(id=letter_id)
        if letter.resolution:
            return f"already {letter.resolution}"
        policy = _registry.get(letter.policy)
        if policy is None:
            raise DeadLetterRetryFailed(f"no policy called {letter.policy} is registered")
        event = recorded(Event.objects.get(position=letter.position))
        try:
            with transaction.atomic():
                policy.react(event)
        except MOVED_ON:
            pass
        except Exception as exc:
            failed_again = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            failed_again = ""
        if failed_again:
            letter.attempts += 1
            letter.error = failed_again
            letter.failed_at = timezone.now()
            letter.save(update_fields=["attempts", "error", "failed_at"])
        else:
            letter.resolution, letter.resolved_at = "retried", timezone.now()
            letter.save(update_fields=["resolution", "resolved_at"])
    if failed_again:
        raise DeadLetterRetryFailed(failed_again)
    return "retried"


def dismiss_dead_letter(letter_id: int) -> str:
    """Close a dead letter without reacting (an operator decided the reaction is not wanted)."""
    updated = PolicyDeadLetter.objects.filter(id=letter_id, resolution="").update(
        resolution="dismissed", resolved_at=timezone.now())
    return "dismissed" if updated else "already resolved"


@dataclass(frozen=True)
class PolicyStatus:
    """Where a policy stands: its checkpoint, the events of its types waiting after it, and
    its open dead letters."""

    name: str
    checkpoint: int
    waiting: int
    dead_letters: int


def status() -> list[PolicyStatus]:
    """Every registered policy's standing, for operators."""
    checkpoints = dict(ProjectionCheckpoint.objects.filter(
        name__in=[p.checkpoint_name for p in registered()]).values_list("name", "position"))
    rows = []
    for policy in registered():
        position = checkpoints.get(policy.checkpoint_name, 0)
        rows.append(PolicyStatus(
            name=policy.name, checkpoint=position,
            waiting=Event.objects.filter(position__gt=position,
                                         type__in=sorted(policy.event_types)).count(),
            dead_letters=PolicyDeadLetter.objects.filter(policy=policy.name,
                                                         resolution="").count()))
    return rows


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
