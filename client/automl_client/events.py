"""The live event stream (`WS /ws/v1/events/`) as an async iterator that never skips nor
repeats an event.

It resumes with `?after=` the last position it yielded whenever the socket drops (close 1011,
a network failure), and on a resync (close 4000 after `{"type": "resync", "after": N}`: the
client fell too far behind) it reads the REST feed from N up to the head, then reconnects.
A revoked credential (4401) or a removed membership (4403) ends it with `Unauthorized` or
`Forbidden`.

    async for event in client.events(after=0, subscriptions=[("task", task_id)]):
        ...
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import websockets
from websockets.asyncio.client import connect

from automl_client import errors
from automl_client.models import Event

if TYPE_CHECKING:
    from automl_client.client import Client

CLOSE_RESYNC, CLOSE_REVOKED, CLOSE_NOT_MEMBER = 4000, 4401, 4403


class EventStream:
    """`async for event in stream`: backlog after `after` (or only new events when None),
    then live events, resuming across disconnects."""

    def __init__(self, client: Client, after: int | None = None,
                 subscriptions: list[tuple[str, str | None]] | None = None,
                 reconnect_delay_s: float = 0.5, max_reconnects: int = 20):
        self.client = client
        self.after = after
        self.subscriptions = subscriptions or []
        self.reconnect_delay_s, self.max_reconnects = reconnect_delay_s, max_reconnects

    def url(self) -> str:
        """The websocket URL, with `after` when there is a position to resume from."""
        base = self.client.base_url.replace("https://", "wss://", 1).replace(
            "http://", "ws://", 1)
        query = f"?after={self.after}" if self.after is not None else ""
        return f"{base}/ws/v1/events/{query}"

    def _wanted(self, event: Event) -> bool:
        if not self.subscriptions:
            return True
        return any(event.stream_type == kind and stream in (None, event.stream_id)
                   for kind, stream in self.subscriptions)

    def _take(self, data: dict[str, Any]) -> Event | None:
        """The event, once: None for one at or below the position already yielded."""
        event = Event.from_json(data)
        if self.after is not None and event.position <= self.after:
            return None
        self.after = event.position
        return event

    async def _catch_up(self, after: int) -> list[Event]:
        """Every readable event after `after` from the REST feed, as the resync asks."""
        caught: list[Event] = []
        self.after = after if self.after is None else min(self.after, after)
        while True:
            page = await asyncio.to_thread(self.client.events_page, after=self.after,
                                           limit=1000)
            fresh = [e for e in (self._take(d) for d in page["results"]) if e is not None]
            caught += [e for e in fresh if self._wanted(e)]
            if not page["results"]:
                return caught
            self.after = max(self.after, page["next_after"])

    async def __aiter__(self) -> AsyncIterator[Event]:
        failures = 0
        while True:
            try:
                async with connect(self.url(), additional_headers=self.client.transport.headers(),
                                   open_timeout=30) as socket:
                    for kind, stream in self.subscriptions:
                        await socket.send(json.dumps({"type": "subscribe", "stream_type": kind,
                                                      "stream_id": stream}))
                    async for text in socket:
                        failures = 0
                        message = json.loads(text)
                        if message.get("type") == "event":
                            event = self._take(message["event"])
                            if event is not None:
                                yield event
                        elif message.get("type") == "resync":
                            for event in await self._catch_up(int(message["after"])):
                                yield event
                            break  # the server closes with 4000: reconnect from here
                    else:
                        failures += 1  # closed without a word (a restart): resume
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code == CLOSE_REVOKED:
                    raise errors.Unauthorized("not_authenticated", "The credential was "
                                              "revoked or has expired.") from None
                if code == CLOSE_NOT_MEMBER:
                    raise errors.Forbidden("permission_denied", "No longer a member of the "
                                           "tenant.") from None
                failures += code != CLOSE_RESYNC
            except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
                failures += 1
                if failures > self.max_reconnects:
                    raise errors.TransportError("unreachable", f"{self.url()}: {exc}") from exc
            if failures > self.max_reconnects:
                raise errors.TransportError("unreachable", "The event stream kept closing.")
            await asyncio.sleep(self.reconnect_delay_s * min(failures, 10))
