"""Money stays with the roles that may read it: the REST feed and the websocket filter events by
the role table, like the wallet, ledger and usage routes themselves (issue 16, item 6)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.roles import ROLES
from config.asgi import application
from eventlog.store import read_log
from tests.conftest import add_member
from tests.eventlog.money_world import MONEY_ROLES, write_money_events
from tests.feed import read_feed

pytestmark = pytest.mark.django_db(transaction=True)
PAYMENT_FIELDS = {"amount", "price_per_hour", "checkout_url", "session_id", "payment_intent"}


def reader_of(api, owner, role):
    return owner if role == "owner" else add_member(api, owner, role)


def make_project(api, owner, name):
    response = api.as_(owner).post("/api/v1/projects/", {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def seen_project(project_id):
    return lambda events: any(e["stream_id"] == project_id for e in events)


@pytest.mark.parametrize("role", ROLES)
def test_the_rest_feed_shows_money_events_only_to_money_roles(api, tenant_a, role):
    reader = reader_of(api, tenant_a, role)
    written = write_money_events(tenant_a.tenant_id)
    assert {"FundsDeposited", "UsageCharged", "TopupCreated"} <= set(written)
    project = make_project(api, tenant_a, "After the money")

    events = read_feed(api.as_(reader), "?after=0&limit=1000", until=seen_project(project))
    wallet_types = sorted({e["type"] for e in events if e["stream_type"] == "wallet"})
    assert seen_project(project)(events)
    if role in MONEY_ROLES:
        assert wallet_types == written
    else:
        assert wallet_types == []
        assert not any(PAYMENT_FIELDS & set(e["data"]) for e in events)

    response = api.as_(reader).get("/api/v1/events/?stream_type=wallet&after=0&limit=1000")
    assert response.status_code == 200
    body = response.json()
    if role in MONEY_ROLES:
        assert sorted({e["type"] for e in body["results"]}) == written
    else:
        assert body == {"results": [], "next_after": 0}


def test_paging_past_hidden_events_neither_loops_nor_misses(api, tenant_a):
    """A viewer's pages skip the money between readable events: full pages, then an empty one."""
    viewer = add_member(api, tenant_a, "viewer")
    projects = []
    for n in range(3):
        write_money_events(tenant_a.tenant_id)
        projects.append(make_project(api, tenant_a, f"Between money {n}"))
    read_feed(api.as_(viewer), "?after=0&limit=1000", until=seen_project(projects[-1]))
    readable = [e.position for e in read_log(tenant_id=tenant_a.tenant_id, limit=10_000)
                if e.stream_type != "wallet"]

    got, after, pages = [], 0, 0
    while True:
        body = api.as_(viewer).get(f"/api/v1/events/?after={after}&limit=2").json()
        pages += 1
        assert pages <= len(readable) + 1, "the client is not making progress"
        if not body["results"]:
            assert body["next_after"] == after
            break
        assert len(body["results"]) == 2 or body["results"][-1]["position"] == readable[-1]
        assert body["next_after"] == body["results"][-1]["position"]
        got += [e["position"] for e in body["results"]]
        after = body["next_after"]
    assert got == readable


# --- the websocket --------------------------------------------------------------------------------


async def events_until(comm: WebsocketCommunicator, project_id: str, timeout: float = 10) -> list:
    """The events the socket delivers up to and including the one of `project_id`."""
    events = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await comm.receive_from(timeout=timeout))
            if message["type"] != "event":
                continue
            events.append(message["event"])
            if message["event"]["stream_id"] == project_id:
                return events


@pytest.mark.parametrize("role", ROLES)
async def test_the_websocket_replays_and_streams_money_only_to_money_roles(api, tenant_a, role):
    reader = await sync_to_async(reader_of)(api, tenant_a, role)
    replayed_types = await sync_to_async(write_money_events)(tenant_a.tenant_id)
    before = await sync_to_async(make_project)(api, tenant_a, "Replayed")
    comm = WebsocketCommunicator(application, "/ws/v1/events/?after=0",
                                 headers=[(b"authorization", f"Bearer {reader.token}".encode())])
    assert (await comm.connect())[0]
    replayed = await events_until(comm, before)

    live_types = await sync_to_async(write_money_events)(tenant_a.tenant_id)
    after = await sync_to_async(make_project)(api, tenant_a, "Live")
    live = await events_until(comm, after)
    await comm.disconnect()

    for events, written in ((replayed, replayed_types), (live, live_types)):
        wallet_types = sorted({e["type"] for e in events if e["stream_type"] == "wallet"})
        if role in MONEY_ROLES:
            assert wallet_types == written
        else:
            assert wallet_types == []
            assert not any(PAYMENT_FIELDS & set(e["data"]) for e in events)
