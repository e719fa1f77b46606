"""Successive halving: rungs keep the best half with twice the epochs, the best trial wins,
and the search never runs past the task's duration."""

import pytest

from training_runtime.search import sample_trials, successive_halving


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_runs(clock, seconds_per_epoch=10.0):
    """Trials whose metric is higher the closer lr is to 0.01, and grows with epochs."""
    calls = []
    reached = {}

    def run(number, params, epochs, left):
        calls.append((number, epochs))
        clock.now += (epochs - reached.get(number, 0)) * seconds_per_epoch
        reached[number] = epochs
        return 1 - abs(params["lr"] - 0.01) * 10 + epochs * 0.001

    return run, calls


def params(n):
    return [{"lr": 0.01 + 0.005 * i} for i in range(n)]


def test_rungs_halve_the_trials_and_double_the_epochs():
    clock = Clock()
    run, calls = fake_runs(clock)
    result = successive_halving(params(8), run, min_epochs=1, max_epochs=4, clock=clock)

    assert [e for _, e in calls] == [1] * 8 + [2] * 4 + [4] * 2
    assert result.best.number == 0 and result.best.epochs == 4 and result.best.state == "best"
    states = [t.state for t in result.trials]
    assert states.count("pruned") == 6 and states.count("finished") == 1
    assert result.trials[0].as_dict()["metrics"] == pytest.approx([1.001, 1.002, 1.004])


def test_the_search_stops_before_running_past_the_duration():
    clock = Clock()
    run, _ = fake_runs(clock, seconds_per_epoch=10)
    result = successive_halving(params(8), run, min_epochs=1, max_epochs=8,
                                max_duration_s=120, clock=clock)

    assert clock.now <= 120
    assert result.best is not None and result.best.metric is not None
    assert any(t.state == "skipped" for t in result.trials)


def test_sampled_trials_start_from_the_defaults():
    trials = sample_trials(5, seed=1, base_lr=0.1)
    assert trials[0] == {"lr": 0.1, "augmentation": "light"} and len(trials) == 5
    assert all(0.01 <= t["lr"] <= 0.3 for t in trials)
    assert sample_trials(5, seed=1, base_lr=0.1) == trials
