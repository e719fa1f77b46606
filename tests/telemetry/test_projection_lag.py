"""An asynchronous projection's lag on /metrics: the age of the oldest event it has not handled
(0 when caught up), and its checkpoint's position."""

import datetime
import time
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from eventlog import lag, projections
from eventlog.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


class Trailing(projections.Projection):
    name = "test.telemetry_trailing"
    event_types = {"ProjectCreated"}
    inline = False

    def handle(self, event) -> None:
        pass


@pytest.fixture
def trailing():
    projection = projections.register(Trailing())
    yield projection
    projections._registry.pop(projection.name, None)


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"projection": Trailing.name})


def test_lag_is_the_age_of_the_oldest_unhandled_event(api, tenant_a, trailing, monkeypatch):
    created = api.as_(tenant_a).post("/api/v1/projects/", {"name": "P"}, format="json")
    assert created.status_code == 201
    event = Event.objects.get(stream_id=created.json()["id"])
    later = event.recorded_at + datetime.timedelta(seconds=90)  # the log is append-only
    monkeypatch.setattr(lag, "timezone", SimpleNamespace(now=lambda: later))

    # On PostgreSQL a reader holds back events behind the server's oldest open transaction
    # (any database's): one open elsewhere delays what the projection can see.
    deadline = time.monotonic() + 20
    while (seconds := lag.observe(trailing)) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)

    assert seconds == 90
    assert gauge("automl_projection_lag_seconds") == 90
    assert gauge("automl_projection_position") == 0

    while projections.catch_up(trailing) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lag.observe(trailing) == 0
    assert gauge("automl_projection_lag_seconds") == 0
    assert gauge("automl_projection_position") >= event.position
