"""Live delivery of committed events: one hub per tenant per process, fed from the log.

A channel-layer message is only a wake-up ("tenant T committed something"). The hub then reads
the log once from its cursor with the gap-free reader and hands the events to every socket of
that tenant in this process, in memory. So an event costs one channel-layer operation per
process and one database read per process, never one per socket, and a lost message costs
only latency: hubs also poll while they have sockets.

The same group carries "access changed" nudges (a token revoked, a member removed or given
another role): the hub passes them to that user's sockets, which check their credential again.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from eventlog.records import RecordedEvent, log_head, read_log

logger = logging.getLogger(__name__)
READ_BATCH = 1000
MAX_RETRIES = 30


def retry_delay(attempt: int) -> float:
    """How long a hub waits before its n-th look at a commit held behind the horizon.

    Every 5 ms for the first 100 ms (short transactions end quickly), then doubling to 1 s:
    about 10 s in all before falling back to the poll interval.
    """
    return 0.005 if attempt <= 20 else min(0.01 * 2 ** (attempt - 20), 1.0)


def group_name(tenant_id: uuid.UUID | str) -> str:
    """The channel-layer group that carries a tenant's wake-ups."""
    return f"eventlog.tenant.{uuid.UUID(str(tenant_id)).hex}"


def _remote_layer() -> Any:
    layer = get_channel_layer()
    return None if layer is None or isinstance(layer, InMemoryChannelLayer) else layer


class _Publisher:
    """A background event loop per process that keeps the channel layer's connection open.

    Calling the layer through async_to_sync from plain threads would start a new loop, and a
    new Redis connection, for every commit; here a wake-up is handed over and not waited for.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="eventlog-publisher",
                                 daemon=True).start()
            return self._loop

    def send(self, layer: Any, group: str, message: dict) -> None:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message),
                                                  self._running_loop())
        future.add_done_callback(_log_failure)


def _log_failure(future: concurrent.futures.Future) -> None:
    if future.exception() is not None:  # the log is the truth: a lost wake-up waits for a poll
        logger.warning("could not publish a wake-up: %r", future.exception())


_publisher = _Publisher()


def notify_access_changed(tenant_id: object, user_id: object) -> None:
    """After a credential or membership change: the user's sockets in the tenant, in this
    process and (through the layer) in every other, check their credential again."""
    tenant_id = uuid.UUID(str(tenant_id))
    hubs.access_changed(tenant_id, str(user_id))
    layer = _remote_layer()
    if layer is not None:
        _publisher.send(layer, group_name(tenant_id), {
            "type": "access.changed", "tenant": str(tenant_id), "user": str(user_id)})


def notify_committed(tenant_id: uuid.UUID) -> None:
    """After a commit: wake the tenant's hubs in this process and, through the layer, elsewhere."""
    hubs.wake(tenant_id)
    layer = _remote_layer()
    if layer is not None:
        _publisher.send(layer, group_name(tenant_id),
                        {"type": "log.committed", "tenant": str(tenant_id)})


async def db(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a short ORM read off the event loop, without the shared sync thread."""

    def call() -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return await sync_to_async(call, thread_sensitive=False)()


class Subscriber:
    """What a hub needs of a socket: a queue to put event batches on, and whose it is (so
    that a change of that user's access can nudge it)."""

    def __init__(self, user_id: object = None) -> None:
        self.queue: asyncio.Queue[list[RecordedEvent]] = asyncio.Queue()
        self.pending = 0
        self.overflowed = False
        self.user_id = str(user_id) if user_id is not None else None
        self.nudged = asyncio.Event()

    def offer(self, batch: list[RecordedEvent]) -> None:
        """Queue a batch; a socket that falls too far behind is marked for resync."""
        self.pending += len(batch)
        if self.pending > settings.EVENTS_RESYNC_AFTER:
            self.overflowed = True
        self.queue.put_nowait(batch)

    async def take(self) -> list[RecordedEvent]:
        """The next batch the hub delivered."""
        batch = await self.queue.get()
        self.pending -= len(batch)
        return batch


class TenantHub:
    """Reads one tenant's new events when woken (or every poll interval) and fans them out."""

    def __init__(self, tenant_id: uuid.UUID, layer: Any, channel: str | None):
        self.tenant_id = tenant_id
        self.subscribers: set[Subscriber] = set()
        self.cursor = 0
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._layer, self._channel = layer, channel
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    def access_changed(self, user_id: str) -> None:
        """Tell the user's sockets here to check their credential again."""
        for subscriber in self.subscribers:
            if subscriber.user_id == user_id:
                subscriber.nudged.set()

    async def ready(self) -> None:
        await self._ready.wait()

    async def _run(self) -> None:
        try:
            if self._layer is not None:
                await self._layer.group_add(group_name(self.tenant_id), self._channel)
                await self._confirm_subscription()
            self.cursor = await db(log_head, self.tenant_id)
            self._ready.set()
            # A wake-up that finds nothing readable means a commit is held behind an older open
            # transaction (the gap-free horizon): look again soon, backing off to the poll rate.
            retries = 0
            while True:
                timeout = retry_delay(retries) if retries else settings.EVENTS_POLL_INTERVAL_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                woken = self._wake.is_set()
                self._wake.clear()
                if await self._pull():
                    retries = 0
                elif woken:
                    retries = 1
                elif retries:
                    retries = retries + 1 if retries < MAX_RETRIES else 0
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("event hub for tenant %s stopped", self.tenant_id)
            raise

    async def _confirm_subscription(self, attempts: int = 20) -> None:
        """Wait until our own wake-up comes back: the layer subscribes asynchronously."""
        for _ in range(attempts):
            await self._layer.group_send(group_name(self.tenant_id),
                                         {"type": "log.committed", "tenant": str(self.tenant_id)})
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
                break
            except TimeoutError:
                continue
        else:
            logger.warning("no wake-up echo for tenant %s; relying on polling", self.tenant_id)
        self._wake.clear()

    async def _pull(self) -> int:
        """Read everything readable after the cursor and hand it out; returns how many."""
        pulled = 0
        while True:
            batch = await db(read_log, after=self.cursor, limit=READ_BATCH,
                             tenant_id=self.tenant_id)
            if not batch:
                return pulled
            pulled += len(batch)
            self.cursor = batch[-1].position
            for subscriber in list(self.subscribers):
                subscriber.offer(batch)
            if len(batch) < READ_BATCH:
                return pulled

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task  # its failure, if any, was logged when it happened
        if self._layer is not None:
            try:
                await self._layer.group_discard(group_name(self.tenant_id), self._channel)
            except Exception:
                logger.warning("group_discard failed for tenant %s", self.tenant_id, exc_info=True)


class LoopHubs:
    """The hubs of one event loop, and its single channel-layer listener."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.hubs: dict[uuid.UUID, TenantHub] = {}
        self._layer = _remote_layer()
        self._channel: str | None = None
        self._listener: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def join(self, tenant_id: uuid.UUID, subscriber: Subscriber) -> TenantHub:
        async with self._lock:
            if self._layer is not None and self._channel is None:
                self._channel = await self._layer.new_channel()
                self._listener = self.loop.create_task(self._listen())
            hub = self.hubs.get(tenant_id)
            if hub is None:
                hub = self.hubs[tenant_id] = TenantHub(tenant_id, self._layer, self._channel)
            hub.subscribers.add(subscriber)
        await hub.ready()
        return hub

    async def leave(self, tenant_id: uuid.UUID, subscriber: Subscriber) -> None:
        async with self._lock:
            hub = self.hubs.get(tenant_id)
            if hub is None:
                return
            hub.subscribers.discard(subscriber)
            if hub.subscribers:
                return
            del self.hubs[tenant_id]
        await hub.close()

    async def _listen(self) -> None:
        while True:
            try:
                message = await self._layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            hub = self.hubs.get(uuid.UUID(message.get("tenant", "0" * 32)))
            if hub is None:
                continue
            if message.get("type") == "access.changed":
                hub.access_changed(str(message.get("user")))
            else:
                hub.wake()


class HubRegistry:
    """Hubs per event loop (one loop per ASGI process; tests may run several)."""

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopHubs] = {}
        self._lock = threading.Lock()

    def for_current_loop(self) -> LoopHubs:
        loop = asyncio.get_running_loop()
        with self._lock:
            for stale in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[stale]
            if loop not in self._by_loop:
                self._by_loop[loop] = LoopHubs(loop)
            return self._by_loop[loop]

    def wake(self, tenant_id: uuid.UUID) -> None:
        """Thread-safe: wake the tenant's hub on every loop of this process."""
        self._on_every_loop(tenant_id, lambda hub: hub.wake())

    def access_changed(self, tenant_id: uuid.UUID, user_id: str) -> None:
        """Thread-safe: nudge the user's sockets of the tenant on every loop of this process."""
        self._on_every_loop(tenant_id, lambda hub: hub.access_changed(user_id))

    def _on_every_loop(self, tenant_id: uuid.UUID, call: Callable[[TenantHub], None]) -> None:
        with self._lock:
            loops = list(self._by_loop.values())
        for loop_hubs in loops:
            hub = loop_hubs.hubs.get(tenant_id)
            if hub is not None and not loop_hubs.loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed just now
                    loop_hubs.loop.call_soon_threadsafe(call, hub)


hubs = HubRegistry()
