"""How predictions reach an instance and come back: one request queue per service.

    transport().submit(service_id, request_id, body)     # web: enqueue (body is JSON-ready)
    transport().wait(request_id, timeout_s)               # web: the reply, or None
    transport().take(service_id, max_batch, window_s, block_s)   # instance: a micro-batch
    transport().reply(request_id, body)                   # instance: answer one request
    transport().depth(service_id)                         # web: how many wait (429 above a limit)

With REDIS_URL the queues are Redis lists (web processes and instance workers on any machine);
without it they live in this process's memory, which is what `make run` needs (its in-process
worker runs the instances). An instance takes whatever is queued at once, then waits at most the
batch window for more, up to the batch size: a lone request waits no longer than the window.
"""

import base64
import functools
import json
import queue
import threading
import time
from typing import Any, Protocol

from django.conf import settings

REPLY_TTL_S = 120


class Transport(Protocol):
    """The request queues of services and the replies to their requests."""

    def submit(self, service_id: str, request_id: str, body: dict[str, Any]) -> None:
        """Queue a request for the service's instances."""

    def wait(self, request_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The reply to a request, or None after `timeout_s`."""

    def take(self, service_id: str, max_batch: int, window_s: float, block_s: float
             ) -> list[dict[str, Any]]:
        """Up to `max_batch` queued requests (empty after `block_s` with none)."""

    def reply(self, request_id: str, body: dict[str, Any]) -> None:
        """Answer a request."""

    def depth(self, service_id: str) -> int:
        """How many requests wait for the service."""


def encode_image(content: bytes) -> str:
    """Image bytes as they travel in a request body."""
    return base64.b64encode(content).decode("ascii")


def decode_image(text: str) -> bytes:
    """The image bytes of a request body."""
    return base64.b64decode(text)


class MemoryTransport:
    """Queues in this process: web and instances share it (make run, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue] = {}
        self._replies: dict[str, queue.Queue] = {}

    def _queue(self, service_id: str) -> queue.Queue:
        with self._lock:
            return self._queues.setdefault(service_id, queue.Queue())

    def _reply_box(self, request_id: str) -> queue.Queue:
        with self._lock:
            return self._replies.setdefault(request_id, queue.Queue(maxsize=1))

    def submit(self, service_id: str, request_id: str, body: dict[str, Any]) -> None:
        """Queue a request."""
        self._reply_box(request_id)
        self._queue(service_id).put({**body, "request_id": request_id})

    def wait(self, request_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The reply, or None after the timeout (the box is dropped either way)."""
        box = self._reply_box(request_id)
        try:
            return box.get(timeout=timeout_s)
        except queue.Empty:
            return None
        finally:
            with self._lock:
                self._replies.pop(request_id, None)

    def take(self, service_id: str, max_batch: int, window_s: float, block_s: float
             ) -> list[dict[str, Any]]:
        """A micro-batch."""
        waiting = self._queue(service_id)
        try:
            batch = [waiting.get(timeout=block_s)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + window_s
        while len(batch) < max_batch:
            try:
                batch.append(waiting.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(waiting.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def reply(self, request_id: str, body: dict[str, Any]) -> None:
        """Answer a request whose caller still waits (a late answer is dropped)."""
        with self._lock:
            box = self._replies.get(request_id)
        if box is not None:
            box.put_nowait(body)

    def depth(self, service_id: str) -> int:
        """Queued requests."""
        return self._queue(service_id).qsize()


class RedisTransport:
    """Queues as Redis lists; replies as short-lived lists a caller pops with BLPOP."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)

    @staticmethod
    def _queue(service_id: str) -> str:
        return f"serving:{service_id}:requests"

    @staticmethod
    def _reply_key(request_id: str) -> str:
        return f"serving:reply:{request_id}"

    def submit(self, service_id: str, request_id: str, body: dict[str, Any]) -> None:
        """Queue a request."""
        self._redis.rpush(self._queue(service_id),
                          json.dumps({**body, "request_id": request_id}))

    def wait(self, request_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The reply, or None after the timeout."""
        found = self._redis.blpop([self._reply_key(request_id)], timeout=max(timeout_s, 0.01))
        return json.loads(found[1]) if found else None

    def take(self, service_id: str, max_batch: int, window_s: float, block_s: float
             ) -> list[dict[str, Any]]:
        """A micro-batch."""
        key = self._queue(service_id)
        first = self._redis.blpop([key], timeout=max(block_s, 0.01))
        if not first:
            return []
        batch = [json.loads(first[1])]
        deadline = time.monotonic() + window_s
        while len(batch) < max_batch:
            more = self._redis.lpop(key, max_batch - len(batch)) or []
            batch.extend(json.loads(item) for item in more)
            if more:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            found = self._redis.blpop([key], timeout=max(remaining, 0.01))
            if not found:
                break
            batch.append(json.loads(found[1]))
        return batch

    def reply(self, request_id: str, body: dict[str, Any]) -> None:
        """Answer a request; unread replies expire."""
        key = self._reply_key(request_id)
        with self._redis.pipeline() as pipe:
            pipe.rpush(key, json.dumps(body)).expire(key, REPLY_TTL_S).execute()

    def depth(self, service_id: str) -> int:
        """Queued requests."""
        return int(self._redis.llen(self._queue(service_id)))


@functools.lru_cache(maxsize=1)
def _transport(kind: str, url: str) -> Transport:
    return RedisTransport(url) if kind == "redis" else MemoryTransport()


def transport() -> Transport:
    """The configured transport (SERVING_TRANSPORT: redis when REDIS_URL is set, else memory)."""
    return _transport(settings.SERVING_TRANSPORT, settings.REDIS_URL or "")
