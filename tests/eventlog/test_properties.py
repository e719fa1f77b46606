"""Invariants of the log under arbitrary command sequences (hypothesis)."""

import itertools
import uuid

import hypothesis.strategies as st
from django.db import transaction
from hypothesis import HealthCheck, given, settings

from core.errors import VersionConflict
from eventlog.store import Stream, append, load_stream, read_log
from tests.eventlog.helpers import WidgetMade

# Each step: which of 3 streams, how far the caller's expected version is off, how many events.
steps = st.lists(st.tuples(st.integers(0, 2), st.integers(-2, 2), st.integers(1, 3)),
                 min_size=1, max_size=25)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_versions_stay_contiguous_and_conflicts_are_exactly_the_stale_writes(db, steps):
    tenant = uuid.uuid4()
    streams = [Stream.of(tenant, "widget", uuid.uuid4()) for _ in range(3)]
    model = [0, 0, 0]  # what each stream's version must be
    for which, offset, count in steps:
        expected = max(model[which] + offset, 0)
        events = [WidgetMade(size=n) for n in range(count)]
        try:
            with transaction.atomic():
                append(streams[which], expected, events)
        except VersionConflict:
            assert expected != model[which]
        else:
            assert expected == model[which]
            model[which] += count
    for stream, version in zip(streams, model, strict=True):
        assert [e.version for e in load_stream(stream.id)] == list(range(1, version + 1))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=st.lists(st.integers(1, 4), min_size=1, max_size=12),
       page=st.integers(1, 7))
def test_paging_by_position_returns_every_event_once_in_order(transactional_db, counts, page):
    # Committed appends: on PostgreSQL readers only see finished transactions.
    tenant = uuid.uuid4()
    for count in counts:
        append(Stream.of(tenant, "widget", uuid.uuid4()), 0,
               [WidgetMade(size=n) for n in range(count)])
    everything = read_log(tenant_id=tenant, limit=1000)
    followed, cursor = [], 0
    while batch := read_log(tenant_id=tenant, after=cursor, limit=page):
        followed += batch
        cursor = batch[-1].position
    assert [e.position for e in followed] == [e.position for e in everything]
    assert len(everything) == sum(counts)
    assert all(a.position < b.position for a, b in itertools.pairwise(everything))
