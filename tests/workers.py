"""An in-process dramatiq worker on the stub broker, as `make run` has, that leaves no trace.

dramatiq's Worker registers a middleware on the broker that adds a consumer to its worker for
every queue declared later, and `stop()` does not remove it: a stopped worker of an earlier test
would then take messages of a queue first declared in a later test, and never run them.
"""

import contextlib
import threading
from collections.abc import Iterator

import dramatiq
from dramatiq.broker import Broker

from core.actors import discover
from eventlog import policies


@contextlib.contextmanager
def stub_worker(threads: int = 2, timeout_ms: int = 50) -> Iterator[Broker]:
    """Run a worker on the (flushed) global broker; stop it and unhook it on exit."""
    # Commands send work by actor name (core.work) without importing the actors: like a
    # worker process, declare every app's actors before taking messages.
    discover()
    broker = dramatiq.get_broker()
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=timeout_ms)
    worker.start()
    # `make run` follows the policies in its scheduler thread; so does this worker.
    done = threading.Event()
    follower = threading.Thread(target=_follow_policies, args=(done,), daemon=True)
    follower.start()
    try:
        yield broker
    finally:
        done.set()
        follower.join()
        worker.stop()
        broker.middleware[:] = [m for m in broker.middleware
                                if getattr(m, "worker", None) is not worker]


def _follow_policies(done: threading.Event, every_s: float = 0.05) -> None:
    from django.db import connection

    try:
        while not done.is_set():
            policies.follow_all()
            done.wait(every_s)
    finally:
        connection.close()
