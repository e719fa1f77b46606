"""The dramatiq broker: RabbitMQ or Redis from DRAMATIQ_BROKER_URL, else in-process.

Set up once, before any actor is declared (CoreConfig.ready), so every app's actors bind to it.
dramatiq acknowledges a message only after its actor returns, so a worker that dies mid-job
leaves the message to be redelivered.
"""

import dramatiq
from django.conf import settings
from dramatiq.brokers.stub import StubBroker


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
    dramatiq.set_broker(broker)
    return broker


def check() -> None:
    """Raise when the broker does not answer."""
    broker = dramatiq.get_broker()
    if isinstance(broker, StubBroker):
        return
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    if isinstance(broker, RabbitmqBroker):
        import pika

        params = pika.URLParameters(settings.DRAMATIQ_BROKER_URL)
        params.socket_timeout = params.blocked_connection_timeout = 2
        pika.BlockingConnection(params).close()
        return
    broker.client.ping()
