"""The dramatiq broker: RabbitMQ or Redis from DRAMATIQ_BROKER_URL, else in-process.

Set up once, before any actor is declared (CoreConfig.ready), so every app's actors bind to it.
dramatiq acknowledges a message only after its actor returns, so a worker that dies mid-job
leaves the message to be redelivered. Actors live in `<app>/actors.py` on queue GPU_QUEUE or
CPU_QUEUE and report back through commands, never by writing read models.
"""

import threading
from typing import Any

import dramatiq
from django.conf import settings
from django.db import close_old_connections
from dramatiq.brokers.stub import StubBroker

from core import context
from core.telemetry.jobs import JobTelemetry

GPU_QUEUE = "gpu"  # training and inference: one worker process per device
CPU_QUEUE = "cpu"  # validation, projections catch-up, settlement and other light work
SERVING_QUEUE = "serving"  # service instances: long-lived, one worker thread each


class ContextMiddleware(dramatiq.Middleware):
    """Carry the enqueuer's event metadata into the job, so its events trace back to the cause."""

    def __init__(self) -> None:
        self._tokens = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message,
                       delay: int | None) -> None:
        message.options.setdefault("metadata", context.current().as_dict())

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        metadata = dict(message.options.get("metadata") or {})
        metadata.setdefault("actor", f"worker:{message.actor_name}")
        metadata["causation_id"] = f"job:{message.message_id}"
        self._tokens.token = context._current.set(context.Metadata(**metadata))

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        token = getattr(self._tokens, "token", None)
        if token is not None:
            context._current.reset(token)
            self._tokens.token = None

    after_skip_message = after_process_message


class DatabaseConnectionsMiddleware(dramatiq.Middleware):
    """Workers are long-lived threads: drop stale connections around each job, as requests do."""

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        close_old_connections()

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        close_old_connections()

    after_skip_message = after_process_message


def build_broker(url: str) -> dramatiq.Broker:
    """A broker for the URL: amqp:// RabbitMQ, redis:// Redis, empty: in-process stub."""
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=True)
    if url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    if url:
        raise ValueError(f"DRAMATIQ_BROKER_URL must be amqp:// or redis://, not {url!r}")
    return StubBroker()


def setup() -> dramatiq.Broker:
    """Install the configured broker as dramatiq's global broker."""
    broker = build_broker(settings.DRAMATIQ_BROKER_URL)
    broker.add_middleware(ContextMiddleware())
    broker.add_middleware(DatabaseConnectionsMiddleware())
    broker.add_middleware(JobTelemetry())  # job metrics, log ids, trace context
    dramatiq.set_broker(broker)
    return broker

