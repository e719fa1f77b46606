"""A client's hostile websocket message gets an error message, and the socket stays usable."""

import json

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"type": "subscribe", "stream_type": ' + "[" * 70 + "]" * 70
                                  + "}"])
async def test_json_nested_beyond_reason_is_an_error_message_not_a_crash(tenant_a, text):
    comm = WebsocketCommunicator(application, "/ws/v1/events/",
                                 headers=[(b"authorization", f"Bearer {tenant_a.token}".encode())])
    assert (await comm.connect())[0]

    await comm.send_to(text_data=text)
    reply = json.loads(await comm.receive_from(timeout=10))
    await comm.send_to(text_data='{"type": "subscribe", "stream_type": "project"}')

    assert reply["type"] == "error" and reply["error"]["code"] == "invalid"
    assert await comm.receive_nothing(timeout=0.2)  # still open: a good subscribe is silent
    await comm.disconnect()
