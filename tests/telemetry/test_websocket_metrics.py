"""The live stream's metrics: websockets open now, and how long a live event took from its
commit to its socket."""


import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from eventlog.store import read_log
from tests.eventlog.test_websocket import receive_messages, socket, write

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_open_sockets_and_delivery_lag(tenant_a):
    opened_before = sample("automl_websocket_connections")
    lag_before = sample("automl_websocket_delivery_lag_seconds_count")
    comm = socket(tenant_a)
    assert (await comm.connect())[0]
    assert sample("automl_websocket_connections") == opened_before + 1

    await write(tenant_a.tenant_id, 2)
    await receive_messages(comm, 2)
    deadline = time.monotonic() + 10  # observed just after the send the client has seen
    while sample("automl_websocket_delivery_lag_seconds_count") == lag_before:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert sample("automl_websocket_delivery_lag_seconds_sum") >= 0

    await comm.disconnect()
    assert sample("automl_websocket_connections") == opened_before


async def test_a_backlog_replay_is_not_counted_as_lag(tenant_a):
    await write(tenant_a.tenant_id, 3)
    # On PostgreSQL readers hold back events behind any open transaction of the server: wait
    # until all three are readable, so that the socket's backlog has them all.
    deadline = time.monotonic() + 20
    while len(await sync_to_async(read_log)(tenant_id=tenant_a.tenant_id)) < 3:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    lag_before = sample("automl_websocket_delivery_lag_seconds_count")
    comm = socket(tenant_a, "?after=0")
    assert (await comm.connect())[0]
    await receive_messages(comm, 3)
    assert sample("automl_websocket_delivery_lag_seconds_count") == lag_before
    await comm.disconnect()
