"""GET /api/v1/tasks/{id}/logs/: search, filters, time ranges, tail, limit, download."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.utils import timezone

from tests.conftest import add_member
from tests.tasklogs.conftest import T0, make_task, write_lines

URL = "/api/v1/tasks/{}/logs/"


def get(api, who, task, **params):
    response = api.as_(who).get(URL.format(task.id), params)
    assert response.status_code == 200, response.content
    return response.json()


def messages(body: dict) -> list[str]:
    return [line["message"] for line in body["results"]]


def test_lines_come_in_the_api_shape_oldest_first(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("epoch 1",), ("epoch 2", "WARNING", "node-1"))

    body = get(api, tenant_a, task_of_a)

    first, second = body["results"]
    assert first == {"cursor": first["cursor"], "time": "2026-03-01T12:00:00Z",
                     "node": "node-0", "level": "INFO", "message": "epoch 1"}
    assert second["level"] == "WARNING" and second["node"] == "node-1"
    assert body["next_after"] == second["cursor"] > first["cursor"]


def test_keyword_search_ignores_case(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("Loss went NaN",), ("loss 0.3",), ("accuracy 0.9",), ("100%_done",))

    assert messages(get(api, tenant_a, task_of_a, q="LOSS")) == ["Loss went NaN", "loss 0.3"]
    assert messages(get(api, tenant_a, task_of_a, q="nan")) == ["Loss went NaN"]
    assert messages(get(api, tenant_a, task_of_a, q="%_")) == ["100%_done"]  # no wildcards


def test_node_filter(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("a", "INFO", "gpu-0"), ("b", "INFO", "gpu-1"), ("c", "INFO", "gpu-0"))

    assert messages(get(api, tenant_a, task_of_a, node="gpu-0")) == ["a", "c"]
    assert messages(get(api, tenant_a, task_of_a, node="gpu-9")) == []


def test_level_is_a_minimum(api, tenant_a, task_of_a):
    write_lines(task_of_a, *[(name.lower(), name) for name in
                             ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")])

    assert messages(get(api, tenant_a, task_of_a, level="WARNING")) == [
        "warning", "error", "critical"]
    assert messages(get(api, tenant_a, task_of_a, level="error")) == ["error", "critical"]
    assert len(get(api, tenant_a, task_of_a)["results"]) == 5


def test_since_is_inclusive_until_exclusive_utc_without_offset(api, tenant_a, task_of_a):
    write_lines(task_of_a, *[(f"s{i}",) for i in range(5)])  # 12:00:00 .. 12:00:04

    body = get(api, tenant_a, task_of_a, since="2026-03-01T12:00:01", until="2026-03-01T12:00:03")
    assert messages(body) == ["s1", "s2"]
    shifted = get(api, tenant_a, task_of_a, since="2026-03-01T13:00:03+01:00")
    assert messages(shifted) == ["s3", "s4"]
    # a bare date is midnight UTC; as `until` it includes that day
    assert messages(get(api, tenant_a, task_of_a, until="2026-02-28")) == []
    assert len(get(api, tenant_a, task_of_a, since="2026-03-01", until="2026-03-01")[
        "results"]) == 5
    assert get(api, tenant_a, task_of_a, since="2026-03-02")["results"] == []


@pytest.mark.parametrize(("preset", "kept"), [("recent", ["10 min ago"]),
                                              ("1h", ["50 min ago", "10 min ago"]),
                                              ("24h", ["20 h ago", "50 min ago", "10 min ago"]),
                                              ("7d", ["6 d ago", "20 h ago", "50 min ago",
                                                      "10 min ago"])])
def test_range_presets_count_back_from_now(api, tenant_a, task_of_a, preset, kept):
    now = timezone.now()
    for label, ago in [("8 d ago", timedelta(days=8)), ("6 d ago", timedelta(days=6)),
                       ("20 h ago", timedelta(hours=20)), ("50 min ago", timedelta(minutes=50)),
                       ("10 min ago", timedelta(minutes=10))]:
        write_lines(task_of_a, (label, "INFO", "n", 0), start=now - ago)

    assert messages(get(api, tenant_a, task_of_a, range=preset)) == kept


def test_since_wins_over_a_range(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("old",), start=timezone.now() - timedelta(days=3))

    assert messages(get(api, tenant_a, task_of_a, range="recent",
                        since=(timezone.now() - timedelta(days=4)).isoformat())) == ["old"]


def test_tail_returns_only_newer_lines_and_next_after_advances(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("one",), ("two",))
    first = get(api, tenant_a, task_of_a)

    quiet = get(api, tenant_a, task_of_a, after=first["next_after"])
    assert quiet == {"results": [], "next_after": first["next_after"]}

    write_lines(task_of_a, ("three",), ("four",), start=T0 + timedelta(minutes=1))
    tail = get(api, tenant_a, task_of_a, after=first["next_after"])
    assert messages(tail) == ["three", "four"]
    assert tail["next_after"] == tail["results"][-1]["cursor"] > first["next_after"]
    assert get(api, tenant_a, task_of_a, after=tail["next_after"])["results"] == []


def test_a_filtered_tail_skips_past_lines_that_do_not_match(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("boring",), ("ERROR here", "ERROR"), ("boring",))
    first = get(api, tenant_a, task_of_a, level="ERROR")
    assert messages(first) == ["ERROR here"]
    write_lines(task_of_a, ("more boring",), start=T0 + timedelta(minutes=1))

    tail = get(api, tenant_a, task_of_a, level="ERROR", after=first["next_after"])
    assert tail["results"] == []
    assert tail["next_after"] > first["next_after"]  # the boring lines need no second look
    write_lines(task_of_a, ("later", "ERROR"), start=T0 + timedelta(minutes=2))
    assert messages(get(api, tenant_a, task_of_a, level="ERROR",
                        after=tail["next_after"])) == ["later"]


def test_limit_gives_the_newest_lines_and_the_tail_pages_forward(api, tenant_a, task_of_a):
    write_lines(task_of_a, *[(f"l{i}",) for i in range(7)])

    newest = get(api, tenant_a, task_of_a, limit=3)
    assert messages(newest) == ["l4", "l5", "l6"]
    everything = get(api, tenant_a, task_of_a)
    cursors = [line["cursor"] for line in everything["results"]]
    page = get(api, tenant_a, task_of_a, after=cursors[0], limit=2)
    assert messages(page) == ["l1", "l2"]
    assert page["next_after"] == cursors[2]
    rest = get(api, tenant_a, task_of_a, after=page["next_after"], limit=10)
    assert messages(rest) == ["l3", "l4", "l5", "l6"]
    assert rest["next_after"] == cursors[-1]


def test_a_task_without_lines_answers_empty(api, tenant_a, task_of_a):
    assert get(api, tenant_a, task_of_a) == {"results": [], "next_after": 0}
    assert get(api, tenant_a, task_of_a, after=42) == {"results": [], "next_after": 42}


def test_another_tenants_task_is_missing(api, tenant_a, tenant_b, task_of_a):
    write_lines(task_of_a, ("secret of A",))
    make_task(tenant_b.tenant_id)  # B has tasks of its own
    theirs = api.as_(tenant_b).get(URL.format(task_of_a.id))
    missing = api.as_(tenant_b).get(URL.format("00000000-0000-4000-8000-000000000000"))

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert theirs.json()["error"]["code"] == "not_found"
    download = api.as_(tenant_b).get(URL.format(task_of_a.id), {"format": "text"})
    assert download.status_code == 404 and b"secret" not in download.content


@pytest.mark.parametrize(("params", "field"), [
    ({"level": "LOUD"}, "level"), ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-01T00:00:00"}, "until"), ({"range": "2h"}, "range"),
    ({"after": "-1"}, "after"), ({"after": "x"}, "after"), ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"), ({"format": "csv"}, "format"),
    ({"download": "maybe"}, "download"),
    ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
    ({"q": "x" * 201}, "q")])
def test_bad_parameters_are_400_naming_the_parameter(api, tenant_a, task_of_a, params, field):
    response = api.as_(tenant_a).get(URL.format(task_of_a.id), params)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "invalid"
    assert list(body["error"]["fields"]) == [field]


@pytest.mark.parametrize("params", [{"format": "text"}, {"download": "1"}])
def test_download_is_a_text_attachment_of_the_matching_lines(api, tenant_a, task_of_a, params):
    write_lines(task_of_a, ("loss 1",), ("skip me",), ("loss 2\nTraceback line", "ERROR", "gpu-1"))

    response = api.as_(tenant_a).get(URL.format(task_of_a.id), {**params, "q": "loss",
                                                                 "limit": 1})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="task-{task_of_a.id}.log"'
    assert b"".join(response.streaming_content).decode() == (
        "2026-03-01T12:00:00Z [node-0] INFO loss 1\n"
        "2026-03-01T12:00:02Z [gpu-1] ERROR loss 2\nTraceback line\n")


def test_download_keeps_the_newest_lines_when_over_the_cap(api, tenant_a, task_of_a,
                                                          monkeypatch):
    monkeypatch.setattr("tasklogs.views.DOWNLOAD_MAX_LINES", 2)
    write_lines(task_of_a, ("a",), ("b",), ("c",))

    response = api.as_(tenant_a).get(URL.format(task_of_a.id), {"download": "true"})

    text = b"".join(response.streaming_content).decode().splitlines()
    assert text[0].startswith("[only the newest 2 matching lines")
    assert [line.rsplit(" ", 1)[1] for line in text[1:]] == ["b", "c"]


def test_json_format_is_the_default_shape(api, tenant_a, task_of_a):
    write_lines(task_of_a, ("x",))

    assert messages(get(api, tenant_a, task_of_a, format="json")) == ["x"]


def test_every_member_may_read_logs(api, tenant_a, task_of_a):
    viewer = add_member(api, tenant_a, "viewer")
    write_lines(task_of_a, ("x",))

    assert messages(get(api, viewer, task_of_a)) == ["x"]


def test_download_pages_through_lines_sharing_a_time(api, tenant_a, task_of_a, monkeypatch):
    monkeypatch.setattr("tasklogs.queries.TEXT_CHUNK_LINES", 2)
    write_lines(task_of_a, *[(f"m{i}", "INFO", "n", i // 3) for i in range(7)])

    response = api.as_(tenant_a).get(URL.format(task_of_a.id), {"format": "text"})

    chunks = list(response.streaming_content)
    assert len(chunks) == 4
    assert [line.rsplit(" ", 1)[1] for line in b"".join(chunks).decode().splitlines()] == [
        f"m{i}" for i in range(7)]


@pytest.mark.django_db(transaction=True)
async def test_download_streams_under_asgi_without_reading_it_whole(
        transactional_db, tenant_a, recwarn):
    try:
        task = await sync_to_async(make_task)(tenant_a.tenant_id)
        await sync_to_async(write_lines)(task, ("over asgi",))

        response = await AsyncClient().get(
            URL.format(task.id), {"download": "1"},
            headers={"Authorization": f"Bearer {tenant_a.token}"})

        assert response.status_code == 200
        assert response.is_async
        body = b"".join([chunk async for chunk in response.streaming_content]).decode()
        assert body.endswith("INFO over asgi\n")
        assert not [w for w in recwarn if "synchronous iterators" in str(w.message)]
    finally:
        await sync_to_async(connections.close_all)()  # the sync thread's, before teardown
