"""The in-process worker: jobs run off the request, carry their cause, and feed projections."""

import time
import uuid
from dataclasses import dataclass

import dramatiq
import pytest

from core import context, scheduler
from core.actors import discover
from eventlog import projections
from eventlog.actors import catch_up_projections
from eventlog.models import Event, ProjectionCheckpoint
from eventlog.schema import event
from eventlog.store import Stream, append
from tests.workers import stub_worker

pytestmark = pytest.mark.django_db(transaction=True)


@event("WorkerPinged")
@dataclass(frozen=True)
class WorkerPinged:
    n: int


@dramatiq.actor(queue_name="cpu")
def append_ping(stream_id: str, tenant_id: str) -> None:
    append(Stream.of(tenant_id, "ping", stream_id), 0, [WorkerPinged(n=1)])


@pytest.fixture
def worker():
    with stub_worker(threads=2, timeout_ms=100) as broker:
        yield broker


def test_job_events_carry_the_enqueuers_correlation_and_their_own_causation(worker):
    tenant, stream_id = uuid.uuid4(), str(uuid.uuid4())
    with context.scope(request_id="req-9", correlation_id="corr-9", actor="user:7"):
        message = append_ping.send(stream_id, str(tenant))
    worker.join("cpu", timeout=10_000)
    stored = Event.objects.get(stream_id=stream_id)
    assert stored.metadata["correlation_id"] == "corr-9"
    assert stored.metadata["request_id"] == "req-9"
    assert stored.metadata["causation_id"] == f"job:{message.message_id}"


class CountProjects(projections.Projection):
    """An asynchronous projection: it runs in the worker, not in the append transaction."""

    name = "test.count_projects"
    event_types = {"ProjectCreated"}
    inline = False

    def __init__(self) -> None:
        self.seen: list[str] = []

    def handle(self, event) -> None:
        self.seen.append(event.stream_id)


def test_scheduler_enqueues_catch_up_and_the_worker_runs_it(worker, api, tenant_a):
    projection = projections.register(CountProjects())
    try:
        created = api.as_(tenant_a).post("/api/v1/projects/", {"name": "P"}, format="json")
        assert created.status_code == 201
        assert projection.seen == []  # not inline
        discover()
        assert "eventlog.catch_up_projections" in scheduler.run_due(now=float("inf"))
        worker.join("cpu", timeout=10_000)
        # On PostgreSQL a follower reads below the server's oldest open transaction (any
        # database's): one still open elsewhere holds the event back until a later run.
        deadline = time.monotonic() + 20
        while not projection.seen and time.monotonic() < deadline:
            catch_up_projections.send()
            worker.join("cpu", timeout=10_000)
        assert projection.seen == [created.json()["id"]]
        checkpoint = ProjectionCheckpoint.objects.get(name="test.count_projects")
        assert checkpoint.position == Event.objects.get(stream_id=created.json()["id"]).position
        catch_up_projections.send()  # a second run finds nothing new
        worker.join("cpu", timeout=10_000)
        assert len(projection.seen) == 1
    finally:
        projections._registry.pop("test.count_projects", None)
