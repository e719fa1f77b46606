"""Health, the broker, the channel layer, the scheduler and the spec catalogue.

Real-service tests take `rabbitmq_url` / `redis_url`: they skip outside CI when the service does
not answer and fail in CI.
"""

import asyncio
import threading
import uuid

import dramatiq
import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.core.management import call_command
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, xq_name

from billing.models import ComputeSpec
from core import broker as core_broker
from core import health, scheduler

ALL_OK = {"database": "ok", "channel_layer": "ok", "broker": "ok", "storage": "ok"}


# --- health ------------------------------------------------------------------------------------


def test_health_is_ok_with_the_embedded_defaults(api, db):
    response = api.get("/api/v1/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": ALL_OK}


@pytest.mark.parametrize("failing", sorted(ALL_OK))
def test_a_failing_check_makes_health_degraded(api, db, monkeypatch, failing):
    def broken() -> None:
        raise ConnectionError("nobody home")

    monkeypatch.setitem(health.CHECKS, failing, broken)

    response = api.get("/api/v1/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {**ALL_OK, failing: "error: ConnectionError"}


def test_health_reports_a_real_rabbitmq_broker(api, db, settings, rabbitmq_url):
    previous, broker = dramatiq.get_broker(), core_broker.build_broker(rabbitmq_url)
    settings.DRAMATIQ_BROKER_URL = rabbitmq_url
    dramatiq.set_broker(broker)
    try:
        checks = api.get("/api/v1/health/").json()["checks"]
    finally:
        dramatiq.set_broker(previous)
        broker.close()

    assert checks["broker"] == "ok"


def test_health_reports_a_real_redis_channel_layer(api, db, settings, redis_url):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_url]},
    }}

    checks = api.get("/api/v1/health/").json()["checks"]

    assert checks["channel_layer"] == "ok"


# --- the broker --------------------------------------------------------------------------------


def test_broker_by_url():
    assert isinstance(core_broker.build_broker(""), StubBroker)
    with pytest.raises(ValueError, match="amqp:// or redis://"):
        core_broker.build_broker("kafka://somewhere")


def test_a_message_goes_through_real_rabbitmq_to_a_worker(rabbitmq_url):
    broker = core_broker.build_broker(rabbitmq_url)
    assert isinstance(broker, RabbitmqBroker)
    queue = f"test-{uuid.uuid4().hex}"
    received: list[int] = []
    ran = threading.Event()

    def remember(n: int) -> None:
        received.append(n)
        ran.set()

    actor = dramatiq.actor(remember, broker=broker, queue_name=queue, max_retries=0)
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        actor.send(42)
        assert ran.wait(timeout=10), "the worker never ran the actor"
    finally:
        worker.stop()
        for name in (queue, dq_name(queue), xq_name(queue)):
            broker.channel.queue_delete(name)
        broker.close()

    assert received == [42]


# --- the channel layer -------------------------------------------------------------------------


async def test_a_group_message_goes_through_real_redis(redis_url):
    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    group = f"test-{uuid.uuid4().hex}"
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        await layer.group_send(group, {"type": "test.ping", "n": 1})
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        await layer.group_discard(group, channel)
    finally:
        await layer.flush()

    assert message == {"type": "test.ping", "n": 1}


# --- the scheduler -----------------------------------------------------------------------------


@pytest.fixture
def only_our_jobs(monkeypatch) -> None:
    """An empty job registry for the test, so no app's real job runs; restored afterwards."""
    monkeypatch.setattr(scheduler, "_jobs", {})


def test_a_periodic_job_runs_when_due_and_not_before(only_our_jobs):
    runs: list[int] = []

    @scheduler.periodic(60, name="test-job")
    def count() -> None:
        runs.append(1)

    assert [job.name for job in scheduler.jobs()] == ["test-job"]
    assert scheduler.run_due(now=1000.0) == ["test-job"]
    assert scheduler.run_due(now=1059.0) == []
    assert scheduler.run_due(now=1060.0) == ["test-job"]
    assert len(runs) == 2


def test_a_failing_job_is_retried_at_its_next_period(only_our_jobs):
    calls: list[int] = []

    @scheduler.periodic(10, name="test-failing-job")
    def fail() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    assert scheduler.run_due(now=0.0) == ["test-failing-job"]
    assert scheduler.run_due(now=5.0) == []
    assert scheduler.run_due(now=10.0) == ["test-failing-job"]
    assert len(calls) == 2


def test_job_name_defaults_to_the_functions_path(only_our_jobs):
    @scheduler.periodic(5)
    def tidy() -> None:
        pass

    [job] = scheduler.jobs()
    assert job.name.endswith("tidy")
    assert job.name.startswith(__name__)


# --- the spec catalogue ------------------------------------------------------------------------


def test_seed_specs_makes_cpu_and_gpu_specs_once(db):
    call_command("seed_specs")
    seeded = set(ComputeSpec.objects.values_list("name", "kind", "price_per_hour"))

    call_command("seed_specs")

    assert set(ComputeSpec.objects.values_list("name", "kind", "price_per_hour")) == seeded
    assert {kind for _, kind, _ in seeded} == {"cpu", "gpu"}


def test_seed_specs_keeps_changed_prices(db):
    call_command("seed_specs")
    spec = ComputeSpec.objects.filter(kind="cpu").first()
    ComputeSpec.objects.filter(pk=spec.pk).update(price_per_hour=999)

    call_command("seed_specs")

    assert ComputeSpec.objects.get(pk=spec.pk).price_per_hour == 999


def test_specs_are_listed_with_integer_prices(api, tenant_a):
    call_command("seed_specs")

    response = api.as_(tenant_a).get("/api/v1/billing/specs/")

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert {spec["kind"] for spec in body["results"]} == {"cpu", "gpu"}
    for spec in body["results"]:
        assert {"id", "name", "kind", "price_per_hour", "currency"} <= set(spec)
        assert isinstance(spec["price_per_hour"], int) and spec["price_per_hour"] > 0
        assert spec["currency"] == "USD"
