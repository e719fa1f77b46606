"""A policy that keeps failing on one event records it as a dead letter after
EVENTLOG_POLICY_MAX_ATTEMPTS tries and goes on with the events after it; an operator lists the
dead letters, retries one (the reaction runs once) or dismisses it, with `manage.py policies`."""

import io

import pytest
from django.core.management import CommandError, call_command

from eventlog import policies
from eventlog.models import Event, PolicyDeadLetter
from eventlog.store import append

from .helpers import WidgetMade, widget
from .test_policies import PaintNewWidgets, checkpoint, paintings

pytestmark = pytest.mark.django_db(transaction=True)


class PoisonedBy(PaintNewWidgets):
    """Paints every widget, but fails on the ones in `poisoned` while they stay there."""

    def __init__(self, *poisoned: str):
        super().__init__()
        self.poisoned = set(poisoned)

    def react(self, event):
        super().react(event)
        if event.stream_id in self.poisoned:
            raise RuntimeError(f"storage refused widget {event.stream_id}")


@pytest.fixture
def registered_policy():
    made = []

    def register(policy):
        made.append(policies.register(policy))
        return policy

    yield register
    for policy in made:
        policies._registry.pop(policy.name, None)
    policies._failures.clear()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("policies", *args, stdout=out)
    return out.getvalue()


def test_a_poisoned_event_becomes_a_dead_letter_after_the_attempts_and_the_rest_go_on(
        settings, registered_policy):
    settings.EVENTLOG_POLICY_MAX_ATTEMPTS = 3
    poisoned, later = widget(), widget()
    append(poisoned, 0, [WidgetMade(size=1)])
    append(later, 0, [WidgetMade(size=2)])
    policy = registered_policy(PoisonedBy(str(poisoned.id)))

    assert policies.follow(policy) == 0  # attempt 1: stops there
    assert policies.follow(policy) == 0  # attempt 2
    assert PolicyDeadLetter.objects.count() == 0 and checkpoint(policy) == 0

    assert policies.follow(policy) == 2  # attempt 3 gives up on it, then the next one reacts
    assert (paintings(poisoned), paintings(later)) == (0, 1)
    assert checkpoint(policy) == Event.objects.get(stream_id=str(later.id)).position
    letter = PolicyDeadLetter.objects.get()
    assert (letter.policy, letter.position, letter.stream_id, letter.attempts,
            letter.resolution) == (policy.name, Event.objects.get(
                stream_id=str(poisoned.id)).position, str(poisoned.id), 3, "")
    assert "storage refused widget" in letter.error
    assert policies.follow(policy) == 0  # passed for good: no fourth try

    listed = run("dead-letters")
    assert f"{letter.id}\t{policy.name}\tevent {letter.position}" in listed
    assert f"{policy.name}: checkpoint {checkpoint(policy)}, 0 event(s) waiting, 1 open dead " \
           "letter(s)" in run("status")

    with pytest.raises(CommandError, match="failed again: RuntimeError: storage refused"):
        run("retry", str(letter.id))  # still poisoned
    letter.refresh_from_db()
    assert (letter.attempts, letter.resolution, paintings(poisoned)) == (4, "", 0)

    policy.poisoned.clear()  # the operator fixed the cause
    assert run("retry", str(letter.id)) == f"dead letter {letter.id}: retried\n"
    assert run("retry", str(letter.id)) == f"dead letter {letter.id}: already retried\n"
    assert paintings(poisoned) == 1
    assert run("dead-letters") == "" and "retried" in run("dead-letters", "--all")


def test_a_success_before_the_last_attempt_leaves_no_dead_letter(settings, registered_policy):
    settings.EVENTLOG_POLICY_MAX_ATTEMPTS = 3
    flaky = widget()
    append(flaky, 0, [WidgetMade(size=1)])
    policy = registered_policy(PoisonedBy(str(flaky.id)))
    policies.follow(policy)
    policies.follow(policy)
    policy.poisoned.clear()

    assert policies.follow(policy) == 1
    assert paintings(flaky) == 1 and not PolicyDeadLetter.objects.exists()


def test_a_dismissed_dead_letter_never_reacts(settings, registered_policy):
    settings.EVENTLOG_POLICY_MAX_ATTEMPTS = 1
    poisoned = widget()
    append(poisoned, 0, [WidgetMade(size=1)])
    policy = registered_policy(PoisonedBy(str(poisoned.id)))
    policies.follow(policy)
    letter = PolicyDeadLetter.objects.get()
    policy.poisoned.clear()

    assert run("dismiss", str(letter.id)) == f"dead letter {letter.id}: dismissed\n"
    assert run("retry", str(letter.id)) == f"dead letter {letter.id}: already dismissed\n"
    assert paintings(poisoned) == 0
    with pytest.raises(CommandError, match="No dead letter 999999"):
        run("retry", "999999")
