"""The one worker lifecycle (core.lifecycle): a claim has one winner, the side thread renews the
lease with the app's heartbeat, a stale lease is taken over and its old holder learns it is
superseded, the lease is released at the end, a stop reaches the work loop at its next step,
and the sweep hands each kind's lost work to that kind's own command."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from core import leases, lifecycle
from core.models import WorkLease
from tests.concurrent import collide

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def age(key: str, seconds: float) -> None:
    WorkLease.objects.filter(key=key).update(
        last_seen_at=timezone.now() - timedelta(seconds=seconds))


def test_of_workers_racing_for_one_piece_of_work_exactly_one_claims_it():
    won = collide([lambda n=n: leases.claim("race:1", f"worker-{n}", stale_after_s=60)
                   for n in range(8)])
    assert won.count(True) == 1
    assert WorkLease.objects.get(key="race:1").holder == f"worker-{won.index(True)}"


def test_racing_for_a_stale_lease_one_takes_it_over():
    leases.claim("race:2", "dead", stale_after_s=60)
    age("race:2", 120)
    won = collide([lambda n=n: leases.claim("race:2", f"worker-{n}", stale_after_s=60)
                   for n in range(8)])
    assert won.count(True) == 1


def test_claims_one_after_another_keep_the_first_holder_on_any_database():
    assert leases.claim("seq:1", "a", stale_after_s=60)
    assert [leases.claim("seq:1", h, stale_after_s=60) for h in "bcd"] == [False] * 3
    assert leases.claim("seq:1", "b", stale_after_s=60, take=True)  # the app's claim decided
    assert WorkLease.objects.get(key="seq:1").holder == "b"


def test_the_side_thread_renews_the_lease_with_the_apps_heartbeat_then_releases_it():
    beats = []
    with lifecycle.hold("work:1", every_s=0.05, on_beat=beats.append) as held:
        assert held is not None
        age("work:1", 30)
        wait_until(lambda: len(beats) >= 2)
        renewed = WorkLease.objects.get(key="work:1").last_seen_at
        assert timezone.now() - renewed < timedelta(seconds=5)
        assert renewed >= beats[0]  # the meter is beaten at the lease's own instant
        with lifecycle.hold("work:1") as duplicate:
            assert duplicate is None  # a live worker holds it: a duplicate does nothing
    assert not WorkLease.objects.filter(key="work:1").exists()
    assert not held.is_alive()


def test_a_stale_lease_is_taken_over_and_its_old_holder_finds_itself_superseded():
    beats = []
    with lifecycle.hold("work:2", every_s=0.05, on_beat=beats.append) as old:
        age("work:2", 120)
        assert leases.claim("work:2", "successor", stale_after_s=60)
        wait_until(lambda: old.superseded)
        assert old.lost and old.is_set() and old.stop_reason == lifecycle.SUPERSEDED
        heard = len(beats)
        time.sleep(0.2)
        assert len(beats) == heard  # no heartbeat for work that is no longer its own
    # the old holder leaves the successor's lease alone
    assert WorkLease.objects.get(key="work:2").holder == "successor"


def test_a_stop_reaches_the_work_loop_at_its_next_step():
    asked = threading.Event()

    def look():
        return "user" if asked.is_set() else None

    with lifecycle.hold("work:3", every_s=3600, look=look, look_every_s=0) as held:
        assert not held.is_set()
        asked.set()
        assert held.is_set() and held.stop_reason == "user"  # looked at the step itself
        assert not held.superseded


def test_the_side_thread_looks_by_itself_between_steps():
    with lifecycle.hold("work:4", every_s=3600, look=lambda: lifecycle.SUPERSEDED,
                        look_every_s=0.05) as held:
        wait_until(lambda: held.superseded)
        assert held.stop_reason == lifecycle.SUPERSEDED


@pytest.fixture
def kinds(monkeypatch):
    """An empty registry of kinds for the test, and the calls each kind's command got."""
    monkeypatch.setattr(lifecycle, "_kinds", {})
    return {}


def kind(name: str, running: list, calls: dict, timeout_s: float = 60, fail: bool = False):
    def interrupt(lost, lost_all):
        if fail:
            raise RuntimeError("its command failed")
        calls.setdefault(name, []).append(([item.work.key for item in lost], lost_all))
        return len(lost)

    return lifecycle.register(lifecycle.Kind(name, lambda: timeout_s, lambda: running,
                                             interrupt))


def test_the_sweep_hands_each_kinds_stale_work_to_that_kinds_command(kinds):
    now = timezone.now()
    long_ago = now - timedelta(hours=1)
    leases.claim("a:stale", "w1", stale_after_s=60)
    leases.claim("a:fresh", "w2", stale_after_s=60)
    leases.claim("b:stale", "w3", stale_after_s=60)
    age("a:stale", 120)
    age("b:stale", 20)  # stale for kind b, whose timeout is shorter
    kind("a", [lifecycle.Running("a:stale", 1, "x", long_ago),
               lifecycle.Running("a:fresh", 1, "y", long_ago),
               lifecycle.Running("a:never-beat", 1, "z", long_ago),
               lifecycle.Running("a:just-started", 1, "w", now)], kinds)
    kind("b", [lifecycle.Running("b:stale", 1, "v", long_ago)], kinds, timeout_s=10)
    kind("broken", [lifecycle.Running("c:1", 1, "u", long_ago)], kinds, fail=True)

    assert lifecycle.sweep() == {"a": 2, "b": 1, "broken": -1}  # a failing kind stops no other
    assert kinds == {"a": [(["a:stale", "a:never-beat"], False)], "b": [(["b:stale"], False)]}

    kinds.clear()
    lost = lifecycle.find_lost(lifecycle._kinds["a"])
    assert lost[0].last_seen == WorkLease.objects.get(key="a:stale").last_seen_at
    assert lost[1].last_seen == long_ago  # never beat: lost since it started


def test_when_every_worker_died_with_the_process_all_running_work_is_lost(kinds):
    leases.claim("a:fresh", "w", stale_after_s=60)
    kind("a", [lifecycle.Running("a:fresh", 1, "y", None)], kinds)
    beat_at = timezone.now() - timedelta(seconds=1)
    assert lifecycle.sweep(lost_all=True, last_seen={"a:gone": beat_at}) == {"a": 1}
    assert kinds["a"] == [(["a:fresh"], True)]
