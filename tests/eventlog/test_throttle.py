from eventlog.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_at_most_one_event_per_key_per_interval():
    clock = Clock()
    ticks = Throttle(1.0, clock=clock)
    assert ticks.allow("task-1")
    clock.now += 0.4
    assert not ticks.allow("task-1")
    assert ticks.allow("task-2")  # keys are independent
    clock.now += 0.6
    assert ticks.allow("task-1")


def test_forced_events_always_pass_and_restart_the_interval():
    clock = Clock()
    ticks = Throttle(1.0, clock=clock)
    assert ticks.allow("t")
    clock.now += 0.1
    assert ticks.allow("t", force=True)
    clock.now += 0.95
    assert not ticks.allow("t")


def test_forgotten_keys_start_afresh():
    clock = Clock()
    ticks = Throttle(10.0, clock=clock)
    ticks.allow("t")
    ticks.forget("t")
    assert ticks.allow("t")


def test_many_ticks_in_a_burst_become_one_per_interval():
    clock = Clock()
    ticks = Throttle(1.0, clock=clock)
    passed = 0
    for _ in range(1000):  # 1,000 steps over 10 s of simulated time
        clock.now += 0.01
        passed += ticks.allow("t")
    assert 9 <= passed <= 11
