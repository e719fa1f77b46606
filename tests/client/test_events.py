"""The client's live stream against a scripted websocket server: it resumes after a drop with
?after= the last position, and on a resync reads the REST feed before reconnecting; nothing is
skipped or repeated. A revoked credential (4401) ends it with Unauthorized."""

import asyncio
import json

import httpx
import pytest
from automl_client import errors
from automl_client.client import Client
from websockets.asyncio.server import serve


def event(position, stream_id="t1"):
    return {"position": position, "stream_type": "task", "stream_id": stream_id,
            "version": position, "type": "TaskProgressed", "data": {"epoch": position},
            "recorded_at": "2026-01-01T00:00:00Z"}


async def run(script, feed=None, take=6):
    """Connections get `script`'s steps in turn; the positions the client yielded, the
    queries it connected with and the feed requests it made."""
    queries, feed_asked = [], []
    steps = list(script)

    async def handler(socket):
        queries.append(socket.request.path)
        for message in steps.pop(0):
            if isinstance(message, int):
                await socket.close(message)
                return
            await socket.send(json.dumps(message))
        await socket.wait_closed()  # until the client leaves

    def rest(request):
        feed_asked.append(dict(request.url.params))
        return httpx.Response(200, json=feed.pop(0))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = Client(f"http://127.0.0.1:{port}", "aml_x", http=httpx.Client(
            base_url=f"http://127.0.0.1:{port}", transport=httpx.MockTransport(rest)))
        seen = []
        stream = client.events(after=0)
        stream.reconnect_delay_s = 0.01
        async for item in stream:
            seen.append(item.position)
            if len(seen) == take:
                break
    return seen, queries, feed_asked


def test_a_drop_resumes_after_the_last_position():
    script = [[{"type": "event", "event": event(1)}, {"type": "event", "event": event(2)}, 1011],
              [{"type": "event", "event": event(2)}, {"type": "event", "event": event(3)}]]
    seen, queries, _ = asyncio.run(run(script, take=3))
    assert seen == [1, 2, 3]  # 2 came again after the reconnect and was not repeated
    assert queries == ["/ws/v1/events/?after=0", "/ws/v1/events/?after=2"]


def test_a_resync_reads_the_feed_then_reconnects_after_it():
    script = [[{"type": "event", "event": event(1)}, {"type": "resync", "after": 1}, 4000],
              [{"type": "event", "event": event(5)}, {"type": "event", "event": event(6)}]]
    feed = [{"results": [event(2), event(3), event(4)], "next_after": 4},
            {"results": [], "next_after": 4}]
    seen, queries, asked = asyncio.run(run(script, feed=feed, take=6))
    assert seen == [1, 2, 3, 4, 5, 6]
    assert [a["after"] for a in asked] == ["1", "4"]
    assert queries[-1] == "/ws/v1/events/?after=4"


def test_a_revoked_credential_ends_the_stream():
    with pytest.raises(errors.Unauthorized):
        asyncio.run(run([[{"type": "event", "event": event(1)}, 4401]], take=5))
