"""The request queues between web processes and instances, in memory and on a real Redis."""

import queue
import threading
import time
import uuid

import pytest

from serving.transport import MemoryTransport, RedisTransport


@pytest.fixture(params=["memory", "redis"])
def queues(request):
    if request.param == "memory":
        return MemoryTransport()
    return RedisTransport(request.getfixturevalue("redis_url"))


def expect(queues, request_id: str) -> queue.Queue:
    """A caller waiting for one reply: its callback puts the reply in a queue."""
    box = queue.Queue()
    queues.expect(request_id, box.put)
    return box


def test_requests_come_out_in_order_in_batches_and_replies_reach_their_caller(queues):
    service = uuid.uuid4().hex
    ids = [uuid.uuid4().hex for _ in range(5)]
    boxes = [expect(queues, request_id) for request_id in ids]
    for n, request_id in enumerate(ids):
        assert queues.submit(service, request_id, {"image": "", "n": n}, limit=10)
    assert queues.depth(service) == 5

    first = queues.take(service, max_batch=3, window_s=0.0, block_s=1.0)
    rest = queues.take(service, max_batch=3, window_s=0.0, block_s=1.0)

    assert [r["n"] for r in first] == [0, 1, 2] and [r["n"] for r in rest] == [3, 4]
    assert queues.depth(service) == 0
    queues.reply([(request, {"ok": True, "n": request["n"]}) for request in rest])
    queues.reply([(request, {"ok": True, "n": request["n"]}) for request in first])
    assert [box.get(timeout=5)["n"] for box in boxes] == [0, 1, 2, 3, 4]


def test_a_full_queue_refuses_without_queueing(queues):
    service = uuid.uuid4().hex
    assert queues.submit(service, "a", {"n": 1}, limit=2)
    assert queues.submit(service, "b", {"n": 2}, limit=2)
    assert not queues.submit(service, "c", {"n": 3}, limit=2)
    assert queues.depth(service) == 2
    assert [r["n"] for r in queues.take(service, 10, 0.0, 1.0)] == [1, 2]


def test_an_empty_queue_waits_at_most_block_s_and_a_batch_at_most_the_window(queues):
    service = uuid.uuid4().hex
    started = time.monotonic()
    assert queues.take(service, max_batch=4, window_s=0.0, block_s=0.2) == []
    assert time.monotonic() - started < 2.0

    def late():
        # Late for real: only once the taker holds the first request, i.e. is in its window.
        deadline = time.monotonic() + 5
        while queues.depth(service) and time.monotonic() < deadline:
            time.sleep(0.005)  # a poll interval of the wait on the queue, not a guess
        queues.submit(service, uuid.uuid4().hex, {"n": 2}, limit=10)

    queues.submit(service, uuid.uuid4().hex, {"n": 1}, limit=10)
    sender = threading.Thread(target=late)
    sender.start()
    batch = queues.take(service, max_batch=4, window_s=1.0, block_s=1.0)
    sender.join()
    assert [r["n"] for r in batch] == [1, 2], "the window gathers the late request"


def test_a_reply_for_a_caller_that_gave_up_is_dropped(queues):
    service = uuid.uuid4().hex
    box = expect(queues, "gone")
    queues.submit(service, "gone", {"n": 1}, limit=10)
    queues.forget("gone")
    (request,) = queues.take(service, 1, 0.0, 1.0)
    queues.reply([(request, {"ok": True})])  # no error for the instance

    still = expect(queues, "here")
    queues.submit(service, "here", {"n": 2}, limit=10)
    (request,) = queues.take(service, 1, 0.0, 1.0)
    queues.reply([(request, {"ok": True, "n": 2})])
    assert still.get(timeout=5) == {"ok": True, "n": 2}
    assert box.empty(), "the forgotten caller got nothing"


def test_replies_reach_the_web_process_that_asked(redis_url):
    """Two web processes (two transports, two reply lists) share a service's queue; one
    instance answers a batch holding requests of both in one round trip."""
    web_a, web_b, instance = (RedisTransport(redis_url) for _ in range(3))
    service = uuid.uuid4().hex
    box_a, box_b = expect(web_a, "from-a"), expect(web_b, "from-b")
    web_a.submit(service, "from-a", {"n": 1}, limit=10)
    web_b.submit(service, "from-b", {"n": 2}, limit=10)

    batch = instance.take(service, 10, 0.0, 1.0)
    instance.reply([(request, {"n": request["n"]}) for request in batch])

    assert box_a.get(timeout=5) == {"n": 1} and box_b.get(timeout=5) == {"n": 2}
