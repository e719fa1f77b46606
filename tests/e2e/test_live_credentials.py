"""Through a real server (`manage.py serve`, embedded defaults): a websocket whose token is
revoked is closed with 4401 (issue 16, item 5)."""

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.test_make_run import call, server  # noqa: F401  (the server fixture)


def test_revoking_a_token_closes_its_socket_on_a_real_server(server):  # noqa: F811
    status, account = call(server, "POST", "/api/v1/auth/signup/",
                           {"email": "revoked@example.com", "password": "a fine long password",
                            "tenant": "Revoked"})
    assert status == 201
    token = account["token"]
    status, tokens = call(server, "GET", "/api/v1/tokens/", token=token)
    [token_id] = [t["id"] for t in tokens["results"]]

    ws_url = server.replace("http", "ws") + "/ws/v1/events/"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                 open_timeout=10) as ws:
        assert call(server, "POST", "/api/v1/projects/", {"name": "Live"}, token=token)[0] == 201
        assert json.loads(ws.recv(timeout=10))["type"] == "event"

        assert call(server, "DELETE", f"/api/v1/tokens/{token_id}/", token=token)[0] == 204
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4401
