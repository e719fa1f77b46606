"""Projections write a batch of events with a few set-based statements, the same rows as one
event at a time; a projection that writes per event still works."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Project
from accounts.projections import ProjectList
from eventlog import projections
from eventlog.store import RecordedEvent

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def events(tenant: uuid.UUID, specs: list[tuple[str, str, dict]], start: int = 1
           ) -> list[RecordedEvent]:
    versions: dict[str, int] = {}
    made = []
    for offset, (stream, name, data) in enumerate(specs):
        versions[stream] = versions.get(stream, 0) + 1
        made.append(RecordedEvent(
            position=start + offset, tenant_id=tenant, stream_type="project", stream_id=stream,
            version=versions[stream], type=name, schema_version=1, data=data, metadata={},
            recorded_at=T0 + timedelta(seconds=start + offset)))
    return made


def created(name: str) -> dict:
    return {"name": name, "description": "", "created_by": None}


def test_a_batch_is_written_in_a_few_statements_whatever_its_size():
    tenant = uuid.uuid4()
    ids = [str(uuid.uuid4()) for _ in range(30)]
    first = events(tenant, [(i, "ProjectCreated", created(f"p{n}")) for n, i in enumerate(ids)])
    ProjectList().handle_batch(first)
    later = events(tenant, [(i, "ProjectRenamed", {"name": f"q{n}"}) for n, i in enumerate(ids)]
                   + [(str(uuid.uuid4()), "ProjectCreated", created(f"new{n}"))
                      for n in range(30)], start=100)
    for event in later[:30]:  # versions follow the created ones
        object.__setattr__(event, "version", 2)

    with CaptureQueriesContext(connection) as queries:
        ProjectList().handle_batch(later)

    assert len(queries) <= 3  # load the renamed rows, update them, insert the new ones
    assert Project.objects.unscoped().count() == 60
    assert sorted(Project.objects.unscoped().filter(version=2).values_list("name", flat=True)) \
        == sorted(f"q{n}" for n in range(30))


def test_a_create_and_the_updates_after_it_collapse_into_one_row_written_once():
    tenant, project = uuid.uuid4(), str(uuid.uuid4())
    batch = events(tenant, [(project, "ProjectCreated", created("a")),
                            (project, "ProjectRenamed", {"name": "b"}),
                            (project, "ProjectDescriptionChanged", {"description": "words"}),
                            (project, "ProjectArchived", {})])
    with CaptureQueriesContext(connection) as queries:
        ProjectList().handle_batch(batch)
    assert len(queries) <= 1  # one insert (a COPY on PostgreSQL, which Django does not count)
    row = Project.objects.unscoped().get(id=project)
    assert (row.name, row.description, row.version, row.last_position) == ("b", "words", 4, 4)
    assert row.archived_at == batch[-1].recorded_at and row.created_at == batch[0].recorded_at


def test_one_event_at_a_time_gives_the_rows_of_the_batch():
    tenant = uuid.uuid4()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = events(tenant, [(ids[0], "ProjectCreated", created("x")),
                            (ids[1], "ProjectCreated", created("y")),
                            (ids[0], "ProjectRenamed", {"name": "z"}),
                            (ids[1], "ProjectArchived", {}),
                            (ids[2], "ProjectCreated", created("y"))])  # an archived name reused
    ProjectList().handle_batch(batch)
    together = list(Project.objects.unscoped().order_by("pk").values())
    Project.objects.unscoped().all().delete()
    for event in batch:
        ProjectList().handle(event)
    assert list(Project.objects.unscoped().order_by("pk").values()) == together


class PerEvent(projections.Projection):
    """A projection written the old way: one event, one statement."""

    name = "tests.per_event"
    event_types = {"ProjectCreated"}
    models = [Project]

    def handle(self, event: RecordedEvent) -> None:
        Project.objects.create(id=event.stream_id, tenant_id=event.tenant_id,
                               name=event.data["name"], created_at=event.recorded_at,
                               updated_at=event.recorded_at, version=event.version,
                               last_position=event.position)


def test_a_projection_that_writes_per_event_still_takes_batches():
    batch = events(uuid.uuid4(), [(str(uuid.uuid4()), "ProjectCreated", created(f"n{n}"))
                                  for n in range(3)])
    assert not PerEvent().folds and ProjectList().folds
    PerEvent().handle_batch(batch)
    assert Project.objects.unscoped().count() == 3
    with pytest.raises(ValueError, match="does not fold"):
        PerEvent().handle_batch(batch, tables={Project: "elsewhere"})
