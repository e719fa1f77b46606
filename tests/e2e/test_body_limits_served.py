"""`manage.py serve` refuses oversize bodies before reading them: a client declaring 2 GiB gets its
413 after sending a few kilobytes, and a chunked body is stopped at the limit, on the Django
chain and on the prediction gateway alike. Raw sockets, so that the client sends exactly what
the test says and no more."""

import json
import socket
import uuid

import pytest

from tests.e2e.servers import MANAGE, Processes, clean_env, free_port, wait_for

GIB = 1024**3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A bare server (no database is needed: the refusals come before any view)."""
    tmp = tmp_path_factory.mktemp("body-limits")
    processes = Processes(tmp)
    port = free_port()
    env = clean_env(DATA_DIR=str(tmp), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", LOG_LEVEL="WARNING", INPROCESS_WORKER="false",
                    MAX_REQUEST_BYTES="10000")
    processes.start("serve", [*MANAGE, "serve", "--port", str(port)], env)

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_for(listening, timeout=60, what="manage.py serve to listen", processes=processes)
    yield port
    processes.stop_all()


def exchange(port: int, head: str, body: bytes) -> tuple[int, dict]:
    """Send the request head and `body` (all of what the client ever sends), then read the
    answer: (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(content)


def chunked(data: bytes, size: int = 4096) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                    for i in range(0, len(data), size))  # no last chunk: the body never ends


@pytest.mark.parametrize("path, auth", [
    ("/api/v1/auth/signup/", ""),
    (f"/api/v1/services/{uuid.uuid4()}/predict/", "Authorization: Bearer svk_x\n"),
])
def test_a_declared_2_gib_body_is_refused_after_a_few_kilobytes(server, path, auth):
    head = (f"POST {path} HTTP/1.1\nHost: localhost\n{auth}Content-Type: application/json\n"
            f"Content-Length: {2 * GIB}\n")

    status, body = exchange(server, head, b"{" + b" " * 16_000)

    assert (status, body["error"]["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize("path, auth", [
    ("/api/v1/auth/signup/", ""),
    (f"/api/v1/services/{uuid.uuid4()}/predict/", "Authorization: Bearer svk_x\n"),
])
def test_a_chunked_body_is_stopped_at_the_limit(server, path, auth):
    head = (f"POST {path} HTTP/1.1\nHost: localhost\n{auth}Content-Type: application/json\n"
            "Transfer-Encoding: chunked\n")

    status, body = exchange(server, head, chunked(b" " * 40_000))

    assert (status, body["error"]["code"]) == (413, "payload_too_large")
