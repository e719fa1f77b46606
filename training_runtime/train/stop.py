"""Why training stops early: failures with codes, cooperative cancellation, a time budget."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

OOM_ERRORS: tuple[type[BaseException], ...] = (torch.OutOfMemoryError,)


class TrainingFailed(Exception):
    """Training cannot go on; `reason_code` is stable, `message` says what to do next."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


def non_finite_loss(value: float, global_step: int, epoch: int, lr: float) -> TrainingFailed:
    """The failure for a NaN or infinite loss at 1-based `global_step`."""
    return TrainingFailed(
        "non_finite_loss",
        f"The loss became {value} at step {global_step} (epoch {epoch}) with learning rate "
        f"{lr:.3g}. Lower the learning rate (for example to {lr / 10:.3g}), add warmup, "
        "or check the data for invalid values.")


def out_of_memory(batch_size: int, epoch: int, global_step: int, during: str) -> TrainingFailed:
    """The failure for CUDA running out of memory at `batch_size`."""
    suggestion = (f"try batch size {batch_size // 2}" if batch_size > 1
                  else "use a smaller model or a GPU with more memory")
    return TrainingFailed(
        "out_of_memory",
        f"The GPU ran out of memory during {during} at batch size {batch_size} "
        f"(epoch {epoch}, step {global_step}); {suggestion}, or enable mixed precision (amp).")


class CancelToken:
    """Set from any thread; the loop checks it before every step and stops within one step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the loop to stop, checkpoint and report `cancelled`."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether cancellation was asked for (same name as threading.Event, which also works)."""
        return self._event.is_set()


class Deadline:
    """A time budget on an injectable monotonic clock, counting time spent before a resume."""

    def __init__(self, max_duration_s: float | None, clock: Callable[[], float],
                 already_elapsed_s: float = 0.0) -> None:
        self.max_duration_s = max_duration_s
        self.clock = clock
        self.already_elapsed_s = already_elapsed_s
        self.started = clock()

    def session_elapsed(self) -> float:
        """Seconds since this run started."""
        return self.clock() - self.started

    def elapsed(self) -> float:
        """Seconds of training in this checkpoint chain, this run included."""
        return self.already_elapsed_s + self.session_elapsed()

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return self.max_duration_s is not None and self.elapsed() >= self.max_duration_s


def target_reached(value: float | None, target: float | None) -> bool:
    """Whether a "higher is better" metric reached its target."""
    return value is not None and target is not None and value >= target
