import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from core import context
from core.errors import VersionConflict
from eventlog.aggregates import Aggregate, retry_on_conflict
from eventlog.models import Event
from eventlog.schema import upcaster
from eventlog.store import append, load_stream, read_log
from tests.eventlog.helpers import WidgetMade, WidgetPainted, widget


@upcaster("WidgetPainted", from_version=1)
def _paint_v1_to_v2(data: dict) -> dict:
    return {"colour": data["color"], "finish": "matte"}


class Widget(Aggregate):
    stream_type = "widget"
    size = 0
    colour = ""

    def when_WidgetMade(self, data: dict) -> None:
        self.size = data["size"]

    def when_WidgetPainted(self, data: dict) -> None:
        self.colour = data["colour"]


def test_append_numbers_versions_and_positions(db):
    stream = widget()
    recorded = append(stream, 0, [WidgetMade(size=3), WidgetPainted(colour="red", finish="gloss")])
    assert [e.version for e in recorded] == [1, 2]
    assert recorded[0].position < recorded[1].position
    more = append(stream, 2, [WidgetPainted(colour="blue", finish="matte")])
    assert more[0].version == 3 and more[0].position > recorded[1].position
    assert [e.type for e in load_stream(stream.id)] == ["WidgetMade", "WidgetPainted",
                                                        "WidgetPainted"]


@pytest.mark.parametrize("expected", [0, 2, 5])
def test_wrong_expected_version_is_a_conflict_and_writes_nothing(db, expected):
    stream = widget()
    append(stream, 0, [WidgetMade(size=1)])
    with pytest.raises(VersionConflict) as info, transaction.atomic():
        append(stream, expected, [WidgetMade(size=2)])
    assert info.value.status == 409 and info.value.code == "version_conflict"
    assert Event.objects.filter(stream_id=stream.id).count() == 1


def test_aggregate_rebuilt_from_its_stream(db):
    stream = widget()
    widget_now = Widget(stream.tenant_id, stream.id)
    widget_now.append(WidgetMade(size=7))
    widget_now.append(WidgetPainted(colour="green", finish="satin"))
    loaded = Widget.load(stream.tenant_id, stream.id)
    assert (loaded.size, loaded.colour, loaded.version) == (7, "green", 2)


def read_as_of(stream, version: int) -> Widget:
    """The widget as a reader saw it before the later events landed."""
    seen = Widget(stream.tenant_id, stream.id)
    for event in load_stream(stream.id)[:version]:
        seen.apply(event)
    return seen


def test_a_command_that_meets_another_writer_runs_again_from_the_new_head(db):
    stream = widget()
    Widget(stream.tenant_id, stream.id).append(WidgetMade(size=1))
    # another writer paints it after the command's first read, before its write
    Widget.load(stream.tenant_id, stream.id).append(WidgetPainted(colour="red", finish="gloss"))
    reads: list[int] = []

    def paint_if_unpainted() -> str:
        current = (read_as_of(stream, 1) if not reads
                   else Widget.load(stream.tenant_id, stream.id))
        reads.append(current.version)
        if current.colour:
            return f"already {current.colour}"
        current.append(WidgetPainted(colour="blue", finish="matte"))
        return "painted"

    assert retry_on_conflict(paint_if_unpainted) == "already red"
    assert reads == [1, 2], "the rule was checked again on a fresh read"
    assert [e.data.get("colour") for e in load_stream(stream.id)] == [None, "red"]


def test_a_command_that_stays_behind_gives_up_with_the_conflict_and_writes_nothing(db):
    stream = widget()
    Widget(stream.tenant_id, stream.id).append(WidgetMade(size=1))
    Widget.load(stream.tenant_id, stream.id).append(WidgetMade(size=2))
    tries: list[int] = []

    def always_behind() -> None:
        tries.append(1)
        read_as_of(stream, 1).append(WidgetMade(size=3), WidgetMade(size=4))

    with pytest.raises(VersionConflict):
        retry_on_conflict(always_behind, attempts=3)
    assert len(tries) == 3
    assert [e.data["size"] for e in load_stream(stream.id)] == [1, 2]


def test_another_tenants_stream_loads_as_not_found(db):
    from core.errors import NotFound

    stream = widget()
    Widget(stream.tenant_id, stream.id).append(WidgetMade(size=1))
    with pytest.raises(NotFound):
        Widget.load(uuid.uuid4(), stream.id)


def test_old_schema_rows_are_upcast_on_read_never_rewritten(db):
    stream = widget()
    Event.objects.create(tenant_id=stream.tenant_id, stream_type="widget", stream_id=stream.id,
                         version=1, type="WidgetPainted", schema_version=1,
                         data={"color": "teal"})
    [painted] = load_stream(stream.id)
    assert painted.schema_version == 2
    assert painted.data == {"colour": "teal", "finish": "matte"}
    assert painted.payload == WidgetPainted(colour="teal", finish="matte")
    stored = Event.objects.get(stream_id=stream.id)
    assert (stored.schema_version, stored.data) == (1, {"color": "teal"})


def test_metadata_carries_actor_request_correlation_and_causation(db):
    stream = widget()
    with context.scope(request_id="r-1", actor="user:42", correlation_id="c-1"):
        [cause] = append(stream, 0, [WidgetMade(size=1)])
        with context.scope(causation_id=str(cause.position)):
            [effect] = append(stream, 1, [WidgetPainted(colour="red", finish="gloss")])
    assert cause.metadata == {"request_id": "r-1", "actor": "user:42", "correlation_id": "c-1"}
    assert effect.metadata["causation_id"] == str(cause.position)


@pytest.mark.parametrize("statement", [
    "UPDATE eventlog_event SET type = 'Forged'",
    "DELETE FROM eventlog_event",
])
def test_update_and_delete_fail_at_the_database(db, statement):
    append(widget(), 0, [WidgetMade(size=1)])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(statement)
    assert Event.objects.filter(type="Forged").count() == 0
    assert Event.objects.count() >= 1


def test_orm_update_and_delete_fail_too(db):
    [made] = append(widget(), 0, [WidgetMade(size=1)])
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(position=made.position).update(type="Forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(position=made.position).delete()
    assert Event.objects.get(position=made.position).type == "WidgetMade"


def test_truncate_fails_on_postgresql(db, postgres_only):
    append(widget(), 0, [WidgetMade(size=1)])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("TRUNCATE eventlog_event")


@pytest.mark.django_db(transaction=True)
def test_read_log_pages_in_position_order_and_filters():
    tenant = uuid.uuid4()
    streams = [widget(tenant) for _ in range(3)]
    for stream in streams:
        append(stream, 0, [WidgetMade(size=1), WidgetPainted(colour="x", finish="y")])
    everything = read_log(tenant_id=tenant, limit=1000)
    assert len(everything) == 6
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    page = read_log(tenant_id=tenant, after=everything[1].position, limit=2)
    assert [e.position for e in page] == [e.position for e in everything[2:4]]
    only = read_log(tenant_id=tenant, stream_id=streams[1].id)
    assert {e.stream_id for e in only} == {streams[1].id}
    assert read_log(tenant_id=uuid.uuid4()) == []


def test_a_transaction_numbers_its_appends_and_orm_inserts_in_one_block(db):
    """Several appends and a row the ORM writes share one position block, in order."""
    stream = widget()
    with transaction.atomic():
        first = append(stream, 0, [WidgetMade(size=1), WidgetPainted(colour="a", finish="b")])
        second = append(stream, 2, [WidgetPainted(colour="c", finish="d")])
        orm = Event.objects.create(tenant_id=stream.tenant_id, stream_type="widget",
                                   stream_id=stream.id, version=4, type="WidgetMade",
                                   data={"size": 2})
        third = append(stream, 4, [WidgetPainted(colour="g", finish="h")])
    positions = [e.position for e in first + second] + [orm.position] + [third[0].position]
    assert positions == sorted(positions) and len(set(positions)) == 5
    stored = [e.position for e in load_stream(stream.id)]
    assert stored == positions
    if connection.vendor == "postgresql":  # one block: the same transaction id, n = 0..4
        assert [p - positions[0] for p in positions] == [0, 1, 2, 3, 4]


def test_more_events_than_a_position_block_holds_are_refused_and_write_nothing(db):
    stream = widget()
    with pytest.raises(ValueError, match="at most 4096"):
        append(stream, 0, [WidgetMade(size=n) for n in range(4097)])
    assert not Event.objects.filter(stream_id=stream.id).exists()


def test_a_transaction_past_its_position_block_is_refused(db, postgres_only):
    """Appends that together pass 4,096 events in one transaction fail, rather than take
    positions of the next transaction's block."""
    stream = widget()
    with pytest.raises(DatabaseError, match="more than 4096 events"), transaction.atomic():
        append(stream, 0, [WidgetMade(size=n) for n in range(4000)])
        append(stream, 4000, [WidgetMade(size=n) for n in range(97)])
    assert not Event.objects.filter(stream_id=stream.id).exists()
