"""WS /ws/v1/events/: the tenant's events, backlog after `after=N` then live, no gap, no duplicate.

Order of work on connect: join the tenant hub (subscribe first), send the backlog from the log,
then the hub's batches, dropping anything at or below the last position sent, and any event the
caller's role may not read (accounts.feed_rules, as in the REST feed).

The socket lives no longer than its credential: its guard checks it again when nudged (token
revoked, member removed or given another role, in any process) or when the loop's watch, which
checks every open socket's credential in one batch every WS_AUTH_RECHECK_S seconds, finds it
changed; it closes with 4401 or 4403 (accounts.ws_auth). Delivery waits while a check runs, so
nothing is sent on a credential found revoked, and a new role filters what follows.
"""

import asyncio
import json
import logging
import threading
import uuid
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from accounts import api as accounts
from accounts.api import may_read
from core import json_bounds
from core.telemetry import metrics
from eventlog.realtime import Subscriber, db, hubs
from eventlog.records import RecordedEvent, events_after_exceed, read_log

BACKLOG_PAGE = 500
CLOSE_RESYNC = 4000
CLOSE_SERVER_ERROR = 1011
logger = logging.getLogger(__name__)


class EventStreamConsumer(AsyncWebsocketConsumer):
    """Streams one tenant's events; authentication happened in the ASGI middleware."""

    # Per-socket channel-layer membership is what the hub replaces: no layer here.
    channel_layer_alias = "__none__"

    async def connect(self) -> None:
        self.tenant_id: uuid.UUID | None = self.scope.get("tenant_id")
        if self.tenant_id is None:
            await self.close()  # before accept: the handshake is refused with HTTP 403
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        after_values = query.get("after")
        try:
            self.after = int(after_values[0]) if after_values else None
            if self.after is not None and self.after < 0:
                raise ValueError
        except ValueError:
            await self.close()
            return
        self.filters: set[tuple[str, str | None]] = set()
        self.last_sent = 0
        self.credential = self.scope["credential"]
        self.role: str = self.scope["access"].role
        self.gate = asyncio.Lock()  # delivery and credential checks take turns
        self.subscriber = Subscriber(self.credential.user_id)
        # Join before accepting: once the client sees the handshake, nothing committed can be
        # missed, even on a live-only socket.
        self.hub = await hubs.for_current_loop().join(self.tenant_id, self.subscriber)
        self.counted = True  # before the handshake's answer: a client seeing it finds it counted
        metrics.WEBSOCKETS_OPEN.inc()
        metrics.WEBSOCKETS_OPENED.inc()
        await self.accept()
        loop = asyncio.get_running_loop()
        self.sender = loop.create_task(self._stream())
        self.guard = loop.create_task(self._guard())
        watches.for_current_loop().add(self)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            metrics.WEBSOCKETS_OPEN.dec()
        for task in (getattr(self, "sender", None), getattr(self, "guard", None)):
            if task is not None:
                task.cancel()
        if getattr(self, "guard", None) is not None:
            watches.for_current_loop().discard(self)
        if getattr(self, "hub", None) is not None:
            await hubs.for_current_loop().leave(self.tenant_id, self.subscriber)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json_bounds.loads(text_data or "")  # a deep one: ValueError
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "subscribe":
            await self._send({"type": "error", "error": {
                "code": "invalid", "message": 'Send {"type": "subscribe", "stream_type": ..., '
                '"stream_id": ...}.', "fields": {}}})
            return
        stream_type, stream_id = message.get("stream_type"), message.get("stream_id")
        if not isinstance(stream_type, str) or not isinstance(stream_id, str | None):
            await self._send({"type": "error", "error": {
                "code": "invalid", "message": "stream_type must be a string.",
                "fields": {"stream_type": ["A string is required."]}}})
            return
        self.filters.add((stream_type, stream_id))

    def _wanted(self, event: RecordedEvent) -> bool:
        if not may_read(self.role, event.stream_type, event.type):
            return False
        if not self.filters:
            return True
        return (event.stream_type, None) in self.filters or (
            (event.stream_type, event.stream_id) in self.filters)

    async def _send(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def _deliver(self, events: list[RecordedEvent]) -> None:
        async with self.gate:
            for event in events:
                if event.position <= self.last_sent:
                    continue
                self.last_sent = event.position
                if self._wanted(event):
                    # Straight to the server's send: the consumer's send() only wraps the text
                    # in this message, a layer of calls per socket and event.
                    await self.base_send({"type": "websocket.send", "text": event.socket_text})

    async def _guard(self) -> None:
        """Check the credential whenever nudged; close the socket once it fails."""
        try:
            while True:
                await self.subscriber.nudged.wait()
                self.subscriber.nudged.clear()
                async with self.gate:
                    verdict = await db(accounts.socket_recheck, self.credential)
                    if verdict.access is None:
                        self.sender.cancel()
                        watches.for_current_loop().discard(self)
                        await self.close(code=verdict.close_code)
                        return
                    self.role = verdict.access.role
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("credential check for tenant %s failed", self.tenant_id)
            self.sender.cancel()
            await self.close(code=CLOSE_SERVER_ERROR)  # the handshake checks again

    async def _resync(self, after: int) -> None:
        await self._send({"type": "resync", "after": after})
        await self.close(code=CLOSE_RESYNC)

    async def _stream(self) -> None:
        try:
            await self._backlog_then_live()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("event stream for tenant %s failed", self.tenant_id)
            await self.close(code=CLOSE_SERVER_ERROR)  # the client reconnects with after=

    async def _backlog_then_live(self) -> None:
        if self.after is not None:
            self.last_sent = self.after
            if await db(events_after_exceed, self.tenant_id, self.after,
                        settings.EVENTS_RESYNC_AFTER):
                await self._resync(self.after)
                return
            while True:
                page = await db(read_log, after=self.last_sent, limit=BACKLOG_PAGE,
                                tenant_id=self.tenant_id)
                await self._deliver(page)
                if len(page) < BACKLOG_PAGE:
                    break
        while True:
            batch = await self.subscriber.take()
            if self.subscriber.overflowed:
                await self._resync(self.last_sent)
                return
            fresh = [event for event in batch if event.position > self.last_sent]
            await self._deliver(batch)
            if fresh:  # live events only (a backlog replay is old by design): commit to sent
                metrics.WEBSOCKET_LAG.observe((timezone.now() - fresh[0].recorded_at
                                               ).total_seconds())


class CredentialWatch:
    """Every WS_AUTH_RECHECK_S seconds, one batched check of every open socket's credential on
    this event loop (a few queries however many sockets); a socket whose credential no longer
    holds, or whose role changed, is nudged to check its own and act. This is what closes a
    socket when a nudge from another process was lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.consumers: set[EventStreamConsumer] = set()
        self._task: asyncio.Task | None = None

    def add(self, consumer: EventStreamConsumer) -> None:
        self.consumers.add(consumer)
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._run())

    def discard(self, consumer: EventStreamConsumer) -> None:
        self.consumers.discard(consumer)

    async def _run(self) -> None:
        while self.consumers:
            await asyncio.sleep(settings.WS_AUTH_RECHECK_S)
            consumers = list(self.consumers)
            try:
                roles = await db(accounts.socket_roles, {c.credential for c in consumers})
            except Exception:
                logger.warning("batched credential check failed; retrying", exc_info=True)
                continue
            for consumer in consumers:
                if roles.get(consumer.credential) != consumer.role:
                    consumer.subscriber.nudged.set()


class WatchRegistry:
    """One CredentialWatch per event loop (one loop per ASGI process; tests may run several)."""

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, CredentialWatch] = {}
        self._lock = threading.Lock()

    def for_current_loop(self) -> CredentialWatch:
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[stale]
            if loop not in self._by_loop:
                self._by_loop[loop] = CredentialWatch(loop)
            return self._by_loop[loop]


watches = WatchRegistry()
