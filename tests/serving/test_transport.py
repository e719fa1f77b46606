"""The request queues between web processes and instances, in memory and on a real Redis."""

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


def test_requests_come_out_in_order_in_batches_and_replies_reach_their_caller(queues):
    service = uuid.uuid4().hex
    ids = [uuid.uuid4().hex for _ in range(5)]
    for n, request_id in enumerate(ids):
        queues.submit(service, request_id, {"image": "", "n": n})
    assert queues.depth(service) == 5

    first = queues.take(service, max_batch=3, window_s=0.0, block_s=1.0)
    rest = queues.take(service, max_batch=3, window_s=0.0, block_s=1.0)

    assert [r["n"] for r in first] == [0, 1, 2] and [r["n"] for r in rest] == [3, 4]
    assert queues.depth(service) == 0
    for request in first + rest:
        queues.reply(request["request_id"], {"ok": True, "n": request["n"]})
    assert [queues.wait(request_id, 1.0)["n"] for request_id in reversed(ids)] == [4, 3, 2, 1, 0]


def test_an_empty_queue_waits_at_most_block_s_and_a_batch_at_most_the_window(queues):
    service = uuid.uuid4().hex
    started = time.monotonic()
    assert queues.take(service, max_batch=4, window_s=0.0, block_s=0.2) == []
    assert time.monotonic() - started < 2.0

    def late():
        time.sleep(0.05)
        queues.submit(service, uuid.uuid4().hex, {"n": 2})

    queues.submit(service, uuid.uuid4().hex, {"n": 1})
    sender = threading.Thread(target=late)
    sender.start()
    batch = queues.take(service, max_batch=4, window_s=1.0, block_s=1.0)
    sender.join()
    assert [r["n"] for r in batch] == [1, 2], "the window gathers the late request"


def test_a_reply_nobody_waits_for_is_dropped_and_a_wait_times_out(queues):
    assert queues.wait(uuid.uuid4().hex, 0.05) is None
    queues.reply(uuid.uuid4().hex, {"ok": True})  # a caller that gave up: no error
