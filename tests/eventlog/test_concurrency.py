"""Concurrent writers: optimistic concurrency, and readers that follow by position miss nothing.

Runs on PostgreSQL (the suite's database when it answers, always in CI) and on SQLite
(`TEST_DB=sqlite`, the second pass of `make test`).
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from core.errors import VersionConflict
from eventlog.store import append, read_log
from tests.eventlog.helpers import WidgetMade, WidgetPainted, append_closing, widget

pytestmark = pytest.mark.django_db(transaction=True)


def test_sixteen_writers_same_expected_version_exactly_one_wins():
    stream = widget()
    append(stream, 0, [WidgetMade(size=0)])
    start = threading.Barrier(16)

    def attempt(n: int) -> str:
        start.wait()
        try:
            append_closing(stream, 1, [WidgetMade(size=n)])
            return "won"
        except VersionConflict:
            return "conflict"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("won") == 1
    assert outcomes.count("conflict") == 15
    versions = [e.version for e in read_log(stream_id=stream.id, limit=100)]
    assert versions == [1, 2]


def test_reader_following_by_position_sees_every_event_once_in_order():
    tenant = uuid.uuid4()
    writers, appends_each = 8, 25
    done = threading.Event()
    seen: list[int] = []

    def write(n: int) -> None:
        try:
            stream = widget(tenant)
            for version in range(0, appends_each * 2, 2):
                append(stream, version, [WidgetMade(size=n), WidgetPainted(colour="c", finish="f")])
        finally:
            connection.close()

    def follow() -> None:
        cursor = 0
        try:
            while True:
                finished = done.is_set()  # read before the page, so the last page is complete
                page = read_log(tenant_id=tenant, after=cursor, limit=50)
                seen.extend(e.position for e in page)
                if page:
                    cursor = page[-1].position
                elif finished:
                    return
        finally:
            connection.close()

    reader = threading.Thread(target=follow)
    reader.start()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    done.set()
    reader.join(timeout=60)

    stored = [e.position for e in read_log(tenant_id=tenant, limit=10_000)]
    assert len(stored) == writers * appends_each * 2
    assert seen == stored, "the reader skipped or repeated events"
    assert seen == sorted(set(seen))


def test_late_commit_of_an_earlier_transaction_is_not_skipped(postgres_only):
    """A reader must not pass a position that an open transaction can still fill in below."""
    tenant = uuid.uuid4()
    first_appended, release_first = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                append(widget(tenant), 0, [WidgetMade(size=1)])
                first_appended.set()
                release_first.wait(timeout=30)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert first_appended.wait(timeout=30)
    try:
        fast = append_closing(widget(tenant), 0, [WidgetMade(size=2)])
        # The fast transaction committed, but the slow one (older) is still open: the reader
        # must hold back rather than hand out the fast event and later skip the slow one.
        assert read_log(tenant_id=tenant) == []
    finally:
        release_first.set()
        slow.join(timeout=30)
    positions = [e.position for e in read_log(tenant_id=tenant)]
    assert len(positions) == 2 and positions == sorted(positions)
    assert positions[-1] == fast[0].position
