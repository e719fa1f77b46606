"""The partitioning drill: the live event table becomes range-partitioned by position, and
readers, the gap-free follower, appends, the append-only rules, version conflicts and rebuilds
all behave as before."""

import time

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from core.errors import VersionConflict
from eventlog import partitioning, projections
from eventlog.models import Event
from eventlog.store import append, load_stream, read_log
from tests.conftest import sign_up
from tests.eventlog.helpers import WidgetMade, WidgetPainted, widget
from tests.eventlog.test_rebuild import scripted_history, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def following(after: int) -> list[int]:
    """What the gap-free follower reads after a position, once the newest event is below its
    horizon (any open transaction on the server holds the horizon back for a moment)."""
    newest = sql("SELECT max(position) FROM eventlog_event")[0][0]
    deadline = time.monotonic() + 60
    while True:
        positions = [e.position for e in read_log(after=after, limit=10_000)]
        if newest in positions or time.monotonic() > deadline:
            return positions
        time.sleep(0.1)


def sql(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def back_to_one_table(postgres_only):
    """Later tests expect the migrated table: undo the drill (events since it are dropped)."""
    yield
    if partitioning.is_partitioned():
        sql(f"DROP TABLE {partitioning.TABLE}, {partitioning.VERSIONS}")
        sql(f"ALTER TABLE {partitioning.OLD} RENAME TO {partitioning.TABLE}")
        sql(f"ALTER INDEX {partitioning.OLD}_pkey RENAME TO {partitioning.TABLE}_pkey")
        sql(f"ALTER TABLE {partitioning.TABLE} RENAME CONSTRAINT "
            f"{partitioning.OLD}_stream_version TO eventlog_stream_version")
        for name in ("eventlog_tenant_position", "eventlog_type_position"):
            sql(f"ALTER INDEX {name}__old RENAME TO {name}")
    sql("DROP TABLE IF EXISTS eventlog_event__partitioned, eventlog_event_version")


def test_the_event_table_is_partitioned_while_it_keeps_working(api, back_to_one_table):
    scripted_history(api)
    stream = widget()
    append(stream, 0, [WidgetMade(size=1), WidgetPainted(colour="red", finish="gloss")])
    feed_before = following(after=0)
    rows_before = snapshot()
    owner = sign_up(api, tenant="After")

    call_command("partition_events", size=20, ahead=2)

    assert partitioning.is_partitioned()
    partitions = [name for (name,) in sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'eventlog_event'::regclass")]
    assert "eventlog_event_default" in partitions and len(partitions) >= 4
    # readers and the follower see exactly the log as it was, in order
    assert following(after=0) == feed_before
    assert [e.version for e in load_stream(stream.id)] == [1, 2]
    # appends go on, through the API and directly, into the position's own partition
    response = api.as_(owner).post("/api/v1/projects/", {"name": "after"}, format="json")
    assert response.status_code == 201, response.content
    [painted] = append(stream, 2, [WidgetPainted(colour="blue", finish="matte")])
    [(partition,)] = sql("SELECT tableoid::regclass::text FROM eventlog_event "
                         "WHERE position = %s", [painted.position])
    assert partition.startswith("eventlog_event_p")
    assert painted.position in following(after=feed_before[-1])
    assert Event.objects.create(tenant_id=stream.tenant_id, stream_type="widget",
                                stream_id=stream.id, version=4, type="WidgetMade",
                                data={"size": 2}).position > painted.position
    # one event per stream version, whoever writes it
    with pytest.raises(VersionConflict), transaction.atomic():
        append(stream, 2, [WidgetMade(size=9)])
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(tenant_id=stream.tenant_id, stream_type="widget",
                             stream_id=stream.id, version=3, type="WidgetMade", data={})
    # append-only, on the parent and on a partition
    for statement in ("UPDATE eventlog_event SET type = 'Forged'", "DELETE FROM eventlog_event",
                      "TRUNCATE eventlog_event", f"TRUNCATE {partition}",
                      f"DELETE FROM {partition}"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            sql(statement)
    # rebuilds read the partitioned log into the same rows
    before_rebuild = snapshot()
    assert len(before_rebuild["accounts.Project"]) == len(rows_before["accounts.Project"]) + 1
    projections.rebuild(["accounts.projects"])
    assert snapshot() == before_rebuild

    added = partitioning.add_partitions(ahead=5)
    assert added and not set(added) & set(partitions)


def test_converting_twice_or_on_a_bad_size_is_refused(back_to_one_table):
    with pytest.raises(CommandError, match="size"):
        call_command("partition_events", size=0)
    call_command("partition_events", size=1000, ahead=0)
    with pytest.raises(CommandError, match="partitioned already"):
        call_command("partition_events", size=1000)
