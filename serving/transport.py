"""How predictions reach an instance and come back: one request queue per service.

    transport().expect(request_id, deliver)                  # web: deliver(reply) when it comes
    transport().submit(service_id, request_id, body, limit)  # web: queue; False when full
    transport().forget(request_id)                           # web: stop expecting (gave up)
    transport().take(service_id, max_batch, window_s, block_s)  # instance: a micro-batch
    transport().reply([(request, body), ...])                # instance: answer taken requests
    transport().depth(service_id)                            # how many wait

A web process registers a callback before it submits, so a reply that comes back sooner than
expected is not lost, and nothing blocks a thread while an instance works: the prediction route
awaits a future the callback resolves (serving.gateway).

With REDIS_URL the queues are Redis lists (web processes and instance workers on any machine);
each web process has one reply list, which a single thread of that process pops and hands to
the waiting callbacks. Without it the queues live in this process's memory, which is what
`make run` needs (its in-process worker runs the instances). An instance takes whatever is
queued at once, then waits at most the batch window for more, up to the batch size.
"""

import base64
import functools
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from django.conf import settings

log = logging.getLogger("serving.transport")
REPLY_TTL_S = 120
Deliver = Callable[[dict[str, Any]], None]


class Transport(Protocol):
    """The request queues of services and the replies to their requests."""

    def expect(self, request_id: str, deliver: Deliver) -> None:
        """Call `deliver(reply)` (from any thread) when the request's reply arrives."""

    def forget(self, request_id: str) -> None:
        """Stop expecting a reply (a late one is dropped)."""

    def submit(self, service_id: str, request_id: str, body: dict[str, Any], limit: int) -> bool:
        """Queue a request for the service's instances; False when `limit` already wait."""

    def take(self, service_id: str, max_batch: int, window_s: float, block_s: float
             ) -> list[dict[str, Any]]:
        """Up to `max_batch` queued requests (empty after `block_s` with none)."""

    def reply(self, answers: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Answer requests that `take` gave: (request, reply body) pairs."""

    def depth(self, service_id: str) -> int:
        """How many requests wait for the service."""


def encode_image(content: bytes) -> str:
    """Image bytes as they travel in a request body."""
    return base64.b64encode(content).decode("ascii")


def decode_image(text: str) -> bytes:
    """The image bytes of a request body."""
    return base64.b64decode(text)


class _Waiters:
    """The callbacks of this process's requests that wait for a reply."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[str, Deliver] = {}

    def add(self, request_id: str, deliver: Deliver) -> None:
        with self._lock:
            self._callbacks[request_id] = deliver

    def discard(self, request_id: str) -> None:
        with self._lock:
            self._callbacks.pop(request_id, None)

    def deliver(self, request_id: str, body: dict[str, Any]) -> None:
        with self._lock:
            deliver = self._callbacks.pop(request_id, None)
        if deliver is not None:
            deliver(body)


class MemoryTransport:
    """Queues in this process: web and instances share it (make run, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue] = {}
        self._waiters = _Waiters()

    def _queue(self, service_id: str) -> queue.Queue:
        with self._lock:
            return self._queues.setdefault(service_id, queue.Queue())

    def expect(self, request_id: str, deliver: Deliver) -> None:
        """Register the reply's callback."""
        self._waiters.add(request_id, deliver)

    def forget(self, request_id: str) -> None:
        """Drop the reply's callback."""
        self._waiters.discard(request_id)

    def submit(self, service_id: str, request_id: str, body: dict[str, Any], limit: int) -> bool:
        """Queue a request unless `limit` wait already."""
        waiting = self._queue(service_id)
        if waiting.qsize() >= limit:
            return False
        waiting.put({**body, "request_id": request_id})
        return True

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

    def reply(self, answers: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Answer requests whose callers still wait (a late answer is dropped)."""
        for request, body in answers:
            self._waiters.deliver(request["request_id"], body)

    def depth(self, service_id: str) -> int:
        """Queued requests."""
        return self._queue(service_id).qsize()


# Push unless the list already holds ARGV[2] items: the 429 check and the push in one step.
_SUBMIT = """
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
"""


class RedisTransport:
    """Queues as Redis lists; replies go to the asking process's own list, which one thread of
    that process pops (BLPOP) and hands to the waiting callbacks."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._submit = self._redis.register_script(_SUBMIT)
        self._waiters = _Waiters()
        self._lock = threading.Lock()
        self._pump_pid = 0
        self._replies = ""

    @staticmethod
    def _queue(service_id: str) -> str:
        return f"serving:{service_id}:requests"

    def _reply_list(self) -> str:
        """This process's reply list; its pump starts on first use (again after a fork)."""
        with self._lock:
            if self._pump_pid != os.getpid():
                self._pump_pid = os.getpid()
                self._replies = f"serving:replies:{uuid.uuid4().hex}"
                threading.Thread(target=self._pump, args=(self._replies,), daemon=True,
                                 name="serving-replies").start()
            return self._replies

    def _pump(self, key: str) -> None:
        while True:
            try:
                found = self._redis.blpop([key], timeout=1)
            except Exception:  # Redis away for a moment: the waiters time out meanwhile
                log.exception("reading serving replies failed; retrying")
                time.sleep(1)
                continue
            if found:
                message = json.loads(found[1])
                self._waiters.deliver(message["request_id"], message["body"])

    def expect(self, request_id: str, deliver: Deliver) -> None:
        """Register the reply's callback."""
        self._reply_list()
        self._waiters.add(request_id, deliver)

    def forget(self, request_id: str) -> None:
        """Drop the reply's callback."""
        self._waiters.discard(request_id)

    def submit(self, service_id: str, request_id: str, body: dict[str, Any], limit: int) -> bool:
        """Queue a request unless `limit` wait already (atomically, in one round trip)."""
        message = json.dumps({**body, "request_id": request_id, "reply_to": self._reply_list()})
        return bool(self._submit(keys=[self._queue(service_id)], args=[message, limit]))

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

    def reply(self, answers: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Answer requests on their processes' reply lists, in one round trip; unread replies
        expire."""
        answers = list(answers)
        with self._redis.pipeline(transaction=False) as pipe:
            for key in {request["reply_to"] for request, _ in answers}:
                pipe.rpush(key, *(json.dumps({"request_id": request["request_id"], "body": body})
                                  for request, body in answers if request["reply_to"] == key))
                pipe.expire(key, REPLY_TTL_S)
            pipe.execute()

    def depth(self, service_id: str) -> int:
        """Queued requests."""
        return int(self._redis.llen(self._queue(service_id)))


@functools.lru_cache(maxsize=1)
def _transport(kind: str, url: str) -> Transport:
    return RedisTransport(url) if kind == "redis" else MemoryTransport()


def transport() -> Transport:
    """The configured transport (SERVING_TRANSPORT: redis when REDIS_URL is set, else memory)."""
    return _transport(settings.SERVING_TRANSPORT, settings.REDIS_URL or "")
