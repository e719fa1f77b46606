"""Work for the workers, named by commands without importing the workers.

A command that queues work names it (`TRAIN = Work("train_task", GPU_QUEUE)` beside the
command) and sends it by name on commit; the app's `actors.py` declares the actor from the same
`Work`, so the name and queue cannot drift apart. The web process therefore never imports the
worker modules (and through them the training runtime and torch) to queue a job, and the app's
commands do not sit in an import cycle with the actors that call them back.

Worker processes (`config.worker`, `serve`'s in-process worker, `tests.workers.stub_worker`)
import every app's actors through `core.actors.discover()` before they take messages.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from django.db import transaction


@dataclass(frozen=True)
class Work:
    """A kind of job: the name of the actor that runs it and the queue it waits on."""

    actor_name: str
    queue_name: str

    def send(self, *args: Any, **kwargs: Any) -> dramatiq.Message:
        """Queue the job now (arguments must be JSON: ids as strings); the message sent."""
        broker = dramatiq.get_broker()
        # The in-process and Redis brokers refuse a queue no actor of this process declared.
        broker.declare_queue(self.queue_name)
        message = dramatiq.Message(queue_name=self.queue_name, actor_name=self.actor_name,
                                   args=args, kwargs=kwargs, options={})
        return broker.enqueue(message)

    def send_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """Queue the job once the current transaction commits (at once outside one)."""
        transaction.on_commit(lambda: self.send(*args, **kwargs))

    def actor(self, **options: Any) -> Callable[[Callable[..., None]], dramatiq.Actor]:
        """Declare the function that runs this work (in the app's `actors.py`)."""
        return dramatiq.actor(actor_name=self.actor_name, queue_name=self.queue_name, **options)
