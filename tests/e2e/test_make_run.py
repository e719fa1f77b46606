"""`make run`'s path end to end: fresh data dir, migrate, seed, serve; a client's first minutes."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None, token: str | None = None):
    request = urllib.request.Request(base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def server(tmp_path):
    """The embedded defaults only: SQLite in DATA_DIR, in-memory layer, in-process worker."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "DRAMATIQ_BROKER_URL", "S3_BUCKET"}}
    env.update(DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings.local",
               DEBUG="false", LOG_LEVEL="WARNING")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_specs"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen([*manage, "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if call(base, "GET", "/api/v1/health/")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"server did not answer: {process.stdout.read().decode()[-2000:]}")
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_fresh_install_serves_api_and_live_events(server):
    status, health = call(server, "GET", "/api/v1/health/")
    assert status == 200
    assert health == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok",
                                                 "broker": "ok", "storage": "ok"}}

    status, account = call(server, "POST", "/api/v1/auth/signup/",
                           {"email": "first@example.com", "password": "a fine long password",
                            "tenant": "First"})
    assert status == 201
    token = account["token"]

    status, specs = call(server, "GET", "/api/v1/billing/specs/", token=token)
    assert status == 200
    assert {"cpu", "gpu"} <= {spec["kind"] for spec in specs["results"]}

    ws_url = server.replace("http", "ws") + "/ws/v1/events/?after=0"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                 open_timeout=10) as ws:
        status, project = call(server, "POST", "/api/v1/projects/", {"name": "Defects"},
                               token=token)
        assert status == 201
        message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "event"
    assert message["event"]["type"] == "ProjectCreated"
    assert message["event"]["stream_id"] == project["id"]

    status, feed = call(server, "GET", "/api/v1/events/?after=0", token=token)
    assert status == 200
    assert [e["position"] for e in feed["results"]] == [message["event"]["position"]]
    assert feed["next_after"] == message["event"]["position"]

    status, refused = call(server, "GET", "/api/v1/projects/")
    assert status == 401 and refused["error"]["code"] == "not_authenticated"


def test_api_docs_load_with_their_assets_from_the_app_itself(server):
    with urllib.request.urlopen(server + "/api/v1/docs/", timeout=10) as response:
        page = response.read().decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:  # self-hosted: no CDN, every asset answers
        with urllib.request.urlopen(server + asset, timeout=10) as response:
            assert response.status == 200
