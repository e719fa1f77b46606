"""Hyperparameter search by successive halving, inside the task's time budget.

    result = successive_halving(sample_trials(8, seed=0, base_lr=0.01), run_trial,
                                min_epochs=1, max_epochs=8, max_duration_s=1500)
    result.best.params, [t.as_dict() for t in result.trials]  # child runs with their metrics

`run_trial(number, params, epochs, seconds_left)` trains trial `number` up to `epochs` epochs in
total (continuing its own checkpoint) and returns its best metric ("higher is better"). Every
rung keeps the best 1/eta of the trials and gives them eta times the epochs; a trial is started
only when the time measured so far says it fits what is left, so the search never runs past
`max_duration_s`. Pure: no torch, no Django; the worker supplies `run_trial`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

RunTrial = Callable[[int, dict[str, Any], int, float | None], float]


@dataclass
class Trial:
    """One child run: its parameters, the epochs it reached, its metric per rung, its state."""

    number: int
    params: dict[str, Any]
    epochs: int = 0
    metrics: list[float] = field(default_factory=list)
    state: str = "pending"  # pending | pruned | finished | best | skipped

    @property
    def metric(self) -> float | None:
        """Its latest metric."""
        return self.metrics[-1] if self.metrics else None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the task's events and config."""
        return asdict(self)


@dataclass
class SearchResult:
    """Every trial, and the best one (None when none ran)."""

    trials: list[Trial]
    best: Trial | None
    elapsed_s: float


def sample_trials(n: int, *, seed: int, base_lr: float) -> list[dict[str, Any]]:
    """`n` parameter sets: lr log-uniform around `base_lr` (/10..x3), augmentation, optimizer."""
    if n < 1:
        raise ValueError(f"trials must be >= 1, got {n}")
    rng = random.Random(seed)
    trials = [{"lr": base_lr, "augmentation": "light"}]  # the defaults are always a candidate
    while len(trials) < n:
        lr = base_lr * 10 ** rng.uniform(-1, math.log10(3))
        trials.append({"lr": float(f"{lr:.3g}"),
                       "augmentation": rng.choice(("none", "light", "strong"))})
    return trials


def successive_halving(params: list[dict[str, Any]], run_trial: RunTrial, *, min_epochs: int,
                       max_epochs: int, eta: int = 2, max_duration_s: float | None = None,
                       clock: Callable[[], float] = time.monotonic) -> SearchResult:
    """Run the rungs; the best trial of the last rung that ran is `best`."""
    if min_epochs < 1 or max_epochs < min_epochs or eta < 2:
        raise ValueError("need 1 <= min_epochs <= max_epochs and eta >= 2")
    started = clock()
    trials = [Trial(i, dict(p)) for i, p in enumerate(params)]
    alive, epochs = list(trials), min_epochs
    seconds_per_epoch: float | None = None
    while alive:
        for trial in alive:
            left = None if max_duration_s is None else max_duration_s - (clock() - started)
            needed = (epochs - trial.epochs) * (seconds_per_epoch or 0.0)
            if left is not None and (left <= 0 or needed > left):
                trial.state = "skipped"  # would run past the task's duration
                continue
            before = clock()
            trial.metrics.append(float(run_trial(trial.number, trial.params, epochs, left)))
            ran = epochs - trial.epochs
            trial.epochs = epochs
            if ran > 0:
                measured = (clock() - before) / ran
                seconds_per_epoch = max(seconds_per_epoch or 0.0, measured)
            trial.state = "finished"
        ranked = sorted((t for t in alive if t.state == "finished"),
                        key=lambda t: t.metric if t.metric is not None else -math.inf,
                        reverse=True)
        if not ranked or epochs >= max_epochs:
            alive = ranked
            break
        keep = max(1, len(ranked) // eta)
        for trial in ranked[keep:]:
            trial.state = "pruned"
        alive, epochs = ranked[:keep], min(max_epochs, epochs * eta)
    # The survivors reached the most epochs; a trial skipped for time keeps its last metric.
    ran = [t for t in trials if t.metric is not None and t.state != "pruned"]
    best = max(ran, key=lambda t: (t.epochs, t.metric), default=None)
    if best is not None:
        best.state = "best"
    return SearchResult(trials, best, clock() - started)
