"""Producer-side throttling of frequent events (progress ticks): at most one per key per interval.

    ticks = Throttle(min_interval_s=1.0)
    if ticks.allow(task_id):             # False when the last tick for this task was < 1 s ago
        append(stream, version, [TaskProgressed(...)])
    ...
    ticks.allow(task_id, force=True)     # a final tick always goes out

Throttle at the producer, not at the consumer: an event not appended costs nothing anywhere.
"""

import threading
import time
from collections.abc import Callable, Hashable


class Throttle:
    """Remembers when each key last passed; thread-safe."""

    def __init__(self, min_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: Hashable, *, force: bool = False) -> bool:
        """Whether an event for `key` may go out now; records it when it may."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if not force and last is not None and now - last < self.min_interval_s:
                return False
            self._last[key] = now
            return True

    def forget(self, key: Hashable) -> None:
        """Drop a finished key (so the table does not grow with every task ever run)."""
        with self._lock:
            self._last.pop(key, None)
