"""Policies react to each event after their checkpoint exactly once: the reaction's appends
and the checkpoint commit together, a refused reaction counts as done, a failed one is tried
again, and a rebuild never replays them."""

import uuid
from unittest import mock

import pytest

from core.errors import WrongState
from eventlog import policies, projections
from eventlog.models import Event, ProjectionCheckpoint
from eventlog.store import RecordedEvent, Stream, append

from .helpers import WidgetMade, WidgetPainted, widget

pytestmark = pytest.mark.django_db(transaction=True)


class PaintNewWidgets(policies.Policy):
    """The reaction is a command: it appends a WidgetPainted naming the widget it reacted to."""

    name = "tests.paint_new_widgets"
    event_types = {"WidgetMade"}

    def __init__(self, fail: Exception | None = None):
        self.fail = fail

    def react(self, event: RecordedEvent) -> None:
        append(Stream.of(event.tenant_id, "widget", uuid.uuid4()), 0,
               [WidgetPainted(colour=event.stream_id, finish="matt")])
        if self.fail is not None:
            raise self.fail


def paintings(stream: Stream) -> int:
    return Event.objects.filter(type="WidgetPainted", data__colour=str(stream.id)).count()


def checkpoint(policy: policies.Policy) -> int:
    row = ProjectionCheckpoint.objects.filter(name=policy.checkpoint_name).first()
    return row.position if row else 0


def test_each_event_gets_one_reaction_and_a_second_run_does_nothing():
    made = [widget() for _ in range(3)]
    for stream in made:
        append(stream, 0, [WidgetMade(size=1)])
    policy = PaintNewWidgets()

    assert policies.follow(policy) == 3
    assert policies.follow(policy) == 0

    assert [paintings(stream) for stream in made] == [1, 1, 1]


def test_a_crash_before_commit_loses_the_reaction_and_the_checkpoint_together():
    stream = widget()
    append(stream, 0, [WidgetMade(size=1)])
    policy = PaintNewWidgets()
    ProjectionCheckpoint.objects.create(name=policy.checkpoint_name, position=0)
    save = ProjectionCheckpoint.save

    def die(self, *args, **kwargs):  # the process dies after the reaction's append
        raise SystemExit("killed")

    with mock.patch.object(ProjectionCheckpoint, "save", die), pytest.raises(SystemExit):
        policies.follow(policy)
    assert (paintings(stream), checkpoint(policy)) == (0, 0)

    with mock.patch.object(ProjectionCheckpoint, "save", save):
        assert policies.follow(policy) == 1
    assert paintings(stream) == 1
    assert policies.follow(policy) == 0 and paintings(stream) == 1


def test_a_reaction_refused_because_the_state_moved_on_is_done():
    stream = widget()
    append(stream, 0, [WidgetMade(size=1)])
    policy = PaintNewWidgets(fail=WrongState("The task already ended."))

    assert policies.follow(policy) == 1

    assert checkpoint(policy) == Event.objects.get(type="WidgetMade").position
    assert paintings(stream) == 0  # the refused command's writes are rolled back


def test_a_failing_reaction_stops_the_policy_there_and_is_tried_again():
    first, second = widget(), widget()
    append(first, 0, [WidgetMade(size=1)])
    append(second, 0, [WidgetMade(size=2)])
    policy = PaintNewWidgets()
    broken = PaintNewWidgets(fail=RuntimeError("storage away"))
    broken.react = lambda event: (policy.react(event) if event.stream_id == str(first.id)
                                  else PaintNewWidgets.react(broken, event))

    assert policies.follow(broken) == 1
    assert (paintings(first), paintings(second)) == (1, 0)
    assert checkpoint(policy) == Event.objects.get(stream_id=str(first.id)).position

    assert policies.follow(policy) == 1
    assert (paintings(first), paintings(second)) == (1, 1)


def test_a_rebuild_never_runs_policies_and_keeps_their_checkpoints():
    stream = widget()
    append(stream, 0, [WidgetMade(size=1)])
    policy = policies.register(PaintNewWidgets())
    try:
        policies.follow(policy)
        assert policy.name not in {p.name for p in projections.registered()}
        projections.rebuild()
        assert paintings(stream) == 1
        assert checkpoint(policy) == Event.objects.get(type="WidgetMade").position
    finally:
        policies._registry.pop(policy.name)


def test_a_policy_added_to_an_install_with_history_starts_at_the_head():
    append(widget(), 0, [WidgetMade(size=1)])
    policy = PaintNewWidgets()
    policies.starting_at_head(policy.name).code(django_apps(), None)

    assert policies.follow(policy) == 0
    newer = widget()
    append(newer, 0, [WidgetMade(size=2)])
    assert policies.follow(policy) == 1 and paintings(newer) == 1


def django_apps():
    from django.apps import apps

    return apps
