"""WS /ws/v1/events/: authentication, backlog then live without gap or duplicate, isolation."""

import asyncio
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction

from config.asgi import application
from eventlog import realtime
from eventlog.store import append, read_log
from tests.conftest import console_session
from tests.eventlog.helpers import WidgetMade, append_closing, widget

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
def channel_layer(request, settings):
    """Run each test on the in-memory layer and on Redis (a real server; required in CI)."""
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {"default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url]}}}
    return request.param


def socket(account=None, query: str = "", headers: list | None = None) -> WebsocketCommunicator:
    hdrs = list(headers or [])
    if account is not None:
        hdrs.append((b"authorization", f"Bearer {account.token}".encode()))
    return WebsocketCommunicator(application, f"/ws/v1/events/{query}", headers=hdrs)


async def receive_messages(comm: WebsocketCommunicator, count: int, timeout: float = 10) -> list:
    messages = []
    async with asyncio.timeout(timeout):
        while len(messages) < count:
            messages.append(json.loads(await comm.receive_from(timeout=timeout)))
    return messages


async def write(tenant_id: str, count: int, stream=None) -> list:
    """Append `count` events to one stream of the tenant from a worker thread."""
    stream = stream or widget(uuid.UUID(tenant_id))

    def run() -> list:
        recorded = []
        for n in range(count):
            recorded += append_closing(stream, n, [WidgetMade(size=n)])
        return recorded

    return await sync_to_async(run, thread_sensitive=False)()


def positions(messages: list) -> list[int]:
    return [m["event"]["position"] for m in messages if m["type"] == "event"]


async def test_handshake_without_credentials_is_refused(channel_layer):
    connected, _ = await socket().connect()
    assert not connected


async def test_handshake_with_a_bad_token_is_refused(channel_layer):
    comm = socket(headers=[(b"authorization", b"Bearer aml_not-a-real-token")])
    connected, _ = await comm.connect()
    assert not connected


async def test_backlog_then_live_with_concurrent_writers(channel_layer, tenant_a):
    before = await write(tenant_a.tenant_id, 5)
    comm = socket(tenant_a, "?after=0")
    assert (await comm.connect())[0]

    with ThreadPoolExecutor(4) as pool:
        loop = asyncio.get_running_loop()
        writers = [loop.run_in_executor(pool, lambda: asyncio.run(write(tenant_a.tenant_id, 10)))
                   for _ in range(4)]
        messages = await receive_messages(comm, 5 + 40)
        await asyncio.gather(*writers)

    got = positions(messages)
    stored = [e.position for e in await sync_to_async(read_log)(tenant_id=tenant_a.tenant_id,
                                                                  limit=1000)]
    assert got == stored, "gap, duplicate or disorder in backlog + live"
    assert got[:5] == [e.position for e in before]
    event = messages[0]["event"]
    assert set(event) == {"position", "stream_type", "stream_id", "version", "type", "data",
                          "recorded_at"}
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def test_reconnect_with_after_resumes_without_gap_or_duplicate(channel_layer, tenant_a):
    await write(tenant_a.tenant_id, 3)
    first = socket(tenant_a, "?after=0")
    assert (await first.connect())[0]
    seen = positions(await receive_messages(first, 3))
    await first.disconnect()

    await write(tenant_a.tenant_id, 4)  # happens while the client is away
    second = socket(tenant_a, f"?after={seen[-1]}")
    assert (await second.connect())[0]
    backlog = positions(await receive_messages(second, 4))
    live = await write(tenant_a.tenant_id, 2)
    resumed = backlog + positions(await receive_messages(second, 2))
    await second.disconnect()

    stored = [e.position for e in await sync_to_async(read_log)(tenant_id=tenant_a.tenant_id,
                                                                  limit=1000)]
    assert seen + resumed == stored
    assert resumed[-2:] == [e.position for e in live]


async def test_without_after_only_live_events_arrive(channel_layer, tenant_a):
    await write(tenant_a.tenant_id, 3)
    comm = socket(tenant_a)
    assert (await comm.connect())[0]
    assert await comm.receive_nothing(timeout=0.5)
    live = await write(tenant_a.tenant_id, 2)
    assert positions(await receive_messages(comm, 2)) == [e.position for e in live]
    await comm.disconnect()


async def test_sockets_only_stream_their_own_tenant(channel_layer, tenant_a, tenant_b):
    a_socket, b_socket = socket(tenant_a, "?after=0"), socket(tenant_b, "?after=0")
    assert (await a_socket.connect())[0] and (await b_socket.connect())[0]
    written = await write(tenant_a.tenant_id, 3)
    assert positions(await receive_messages(a_socket, 3)) == [e.position for e in written]
    assert await b_socket.receive_nothing(timeout=1.0)
    await a_socket.disconnect()
    await b_socket.disconnect()


async def test_subscribe_narrows_the_feed_to_one_stream(channel_layer, tenant_a):
    comm = socket(tenant_a)
    assert (await comm.connect())[0]
    chosen = widget(uuid.UUID(tenant_a.tenant_id))
    await comm.send_json_to({"type": "subscribe", "stream_type": "widget",
                             "stream_id": chosen.id})
    # The socket handles messages in order: the answer to a later one means the subscribe is in.
    await comm.send_json_to({"type": "ping"})
    [answer] = await receive_messages(comm, 1)
    assert answer["type"] == "error"
    await write(tenant_a.tenant_id, 2)  # another stream: filtered out
    mine = await write(tenant_a.tenant_id, 2, stream=chosen)
    got = await receive_messages(comm, 2)
    assert positions(got) == [e.position for e in mine]
    assert {m["event"]["stream_id"] for m in got} == {chosen.id}
    await comm.disconnect()


async def test_bad_subscribe_message_gets_an_error_not_a_crash(channel_layer, tenant_a):
    comm = socket(tenant_a)
    assert (await comm.connect())[0]
    await comm.send_to(text_data="not json")
    [reply] = await receive_messages(comm, 1)
    assert reply["type"] == "error" and reply["error"]["code"] == "invalid"
    await comm.disconnect()


async def test_client_too_far_behind_is_told_to_resync(channel_layer, tenant_a, settings):
    settings.EVENTS_RESYNC_AFTER = 5
    await write(tenant_a.tenant_id, 8)
    comm = socket(tenant_a, "?after=0")
    assert (await comm.connect())[0]
    [message] = await receive_messages(comm, 1)
    assert message == {"type": "resync", "after": 0}
    closed = await comm.receive_output(timeout=2)
    assert closed["type"] == "websocket.close"


async def test_single_use_ticket(channel_layer, tenant_a, api):
    response = await sync_to_async(api.as_(tenant_a).post)("/api/v1/ws-tickets/")
    assert response.status_code == 201
    ticket = response.json()["ticket"]
    first = socket(query=f"?ticket={ticket}&after=0")
    assert (await first.connect())[0]
    await first.disconnect()
    again = socket(query=f"?ticket={ticket}")
    assert not (await again.connect())[0]


async def test_session_cookie_needs_a_matching_origin(channel_layer, tenant_a):
    key = (await sync_to_async(console_session)(tenant_a)).session_key
    cookie = (b"cookie", f"sessionid={key}".encode())
    host = (b"host", b"console.example.com")
    same = socket(headers=[cookie, host, (b"origin", b"https://console.example.com")])
    assert (await same.connect())[0]
    await same.disconnect()
    foreign = socket(headers=[cookie, host, (b"origin", b"https://evil.example.net")])
    assert not (await foreign.connect())[0]
    no_origin = socket(headers=[cookie, host])
    assert not (await no_origin.connect())[0]


async def test_redis_layer_wakes_hubs_of_other_processes(settings, redis_url, tenant_a,
                                                         monkeypatch):
    """Only the Redis wake-up can deliver here: no local wake, and polling is far away."""
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_url]}}}
    settings.EVENTS_POLL_INTERVAL_S = 60
    monkeypatch.setattr(realtime.hubs, "wake", lambda tenant_id: None)
    comm = socket(tenant_a)
    assert (await comm.connect())[0]
    written = await write(tenant_a.tenant_id, 2)
    assert positions(await receive_messages(comm, 2, timeout=5)) == [e.position for e in written]
    await comm.disconnect()


async def test_event_held_behind_an_open_transaction_arrives_once_it_ends(
        settings, tenant_a, postgres_only):
    """The wake-up finds nothing readable yet; the hub keeps looking instead of waiting a poll.

    The older transaction rolls back, so no wake-up of its own announces that it ended.
    """
    settings.EVENTS_POLL_INTERVAL_S = 60
    comm = socket(tenant_a)
    assert (await comm.connect())[0]
    opened, release = threading.Event(), threading.Event()

    def hold_a_transaction() -> None:
        try:
            with transaction.atomic():
                append(widget(uuid.UUID(tenant_a.tenant_id)), 0, [WidgetMade(size=0)])
                opened.set()
                release.wait(timeout=10)
                transaction.set_rollback(True)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_a_transaction)
    holder.start()
    assert await sync_to_async(opened.wait)(10)
    try:
        fast = await write(tenant_a.tenant_id, 1)
        assert await comm.receive_nothing(timeout=0.3)  # behind the horizon: not yet readable
    finally:
        release.set()
        await sync_to_async(holder.join)(10)
    assert positions(await receive_messages(comm, 1, timeout=3)) == [fast[0].position]
    await comm.disconnect()
