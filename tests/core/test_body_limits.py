"""Request bodies are limited by route at the ASGI door, before they are read: a declared length
over the limit is refused unread, a body without a length (chunked) is counted as it arrives and
stopped at the limit, uploads keep their larger limit on the routes that take them, and the
prediction gateway is guarded the same way. Driven through config.asgi as uvicorn would call it,
with a client that counts how much of its body the server asked for."""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import async_to_sync

from tests.datasets.zips import folders_files, make_zip

pytestmark = pytest.mark.django_db(transaction=True)
GIB = 1024**3
PREDICT = f"/api/v1/services/{uuid.uuid4()}/predict/"


class Client:
    """One request through the ASGI application: the body is handed over in `chunk`-byte
    messages only as the server asks for them, up to `size` bytes; `pulled` says how many it
    asked for."""

    def __init__(self, path: str, body: bytes = b"", *, size: int | None = None,
                 headers: dict[str, str] | None = None, chunk: int = 400,
                 declared: int | str | None = None):
        self.path, self.body, self.chunk = path, body, chunk
        self.size = len(body) if size is None else size
        self.headers = dict(headers or {})
        if declared is not None:
            self.headers["Content-Length"] = str(declared)
        self.pulled = 0
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.content = b""

    def scope(self) -> dict:
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "POST", "scheme": "http", "path": self.path,
                "raw_path": self.path.encode(), "query_string": b"", "root_path": "",
                "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
                "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}

    async def receive(self) -> dict:
        if self.pulled >= self.size:
            await asyncio.Event().wait()  # the body is over: only a disconnect could follow
        start = self.pulled
        self.pulled = min(self.size, start + self.chunk)
        piece = self.body[start:self.pulled] or b"x" * (self.pulled - start)
        return {"type": "http.request", "body": piece, "more_body": self.pulled < self.size}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = {k.decode().lower(): v.decode()
                                     for k, v in message["headers"]}
        else:
            self.content += message.get("body", b"")

    def run(self) -> "Client":
        from config.asgi import application

        async def go():
            await asyncio.wait_for(application(self.scope(), self.receive, self.send), 30)

        async_to_sync(go)()
        return self

    def error(self, status: int) -> dict:
        assert self.status == status, (self.status, self.content[:500])
        body = json.loads(self.content)
        assert set(body["error"]) == {"code", "message", "fields"}
        return body["error"]


def multipart(fields: dict[str, str], file_field: str, file_name: str, data: bytes
              ) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             .encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{file_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


JSON = {"Content-Type": "application/json"}


def test_a_declared_2_gib_anonymous_post_is_refused_before_a_byte_is_read():
    client = Client("/api/v1/auth/signup/", size=2 * GIB, declared=2 * GIB, headers={
        **JSON, "X-Request-ID": "big-1"}, chunk=64 * 1024).run()

    error = client.error(413)
    assert error["code"] == "payload_too_large" and str(2 * GIB) in error["message"]
    assert client.pulled == 0, "the server asked for body bytes it was going to refuse"
    assert client.response_headers["x-request-id"] == "big-1"
    assert client.response_headers["connection"] == "close"


def test_a_chunked_body_is_counted_and_stopped_at_the_limit(settings):
    settings.MAX_REQUEST_BYTES = 1000
    client = Client("/api/v1/auth/signup/", size=100_000, headers=JSON, chunk=400).run()

    assert client.error(413)["code"] == "payload_too_large"
    assert client.pulled <= 1200, f"{client.pulled} bytes read past a 1000-byte limit"


def test_a_chunked_body_within_the_limit_reaches_the_view(settings):
    body = json.dumps({"email": "small@example.com", "password": "a fine long password",
                       "tenant": "Small"}).encode()
    client = Client("/api/v1/auth/signup/", body, headers=JSON, chunk=16).run()

    # DRF reads a body by its Content-Length, so a chunked one arrives empty: the view's 400
    assert client.error(400)["code"] == "invalid"
    assert client.pulled == len(body)


@pytest.mark.parametrize("declared", ["lots", "-1", "1e3", " "])
def test_a_content_length_that_is_not_a_number_is_400_unread(declared):
    client = Client("/api/v1/auth/signup/", size=10, declared=declared, headers=JSON).run()

    assert client.error(400)["code"] == "malformed_request"
    assert client.pulled == 0


def test_an_upload_route_takes_a_body_between_the_request_and_upload_limits(
        tenant_a, project_of_a, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "media")}}}
    settings.MAX_REQUEST_BYTES = 1000
    settings.MAX_UPLOAD_BYTES = 200_000
    body, content_type = multipart({"project": project_of_a["id"], "name": "D",
                                    "kind": "classification", "format": "folders"},
                                   "file", "d.zip", make_zip(folders_files()))
    assert 1000 < len(body) < 200_000
    token = {"Authorization": f"Bearer {tenant_a.token}", "Content-Type": content_type}

    declared = Client("/api/v1/datasets/", body, declared=len(body), headers=token).run()
    assert declared.status == 201, declared.content
    chunked = Client("/api/v1/datasets/", body, headers=token).run()
    assert chunked.error(400)["code"] == "invalid", "past the guard (DRF reads it as empty)"
    assert chunked.pulled == len(body)

    too_big = Client("/api/v1/datasets/", size=GIB, declared=GIB, headers=token).run()
    assert too_big.error(413)["code"] == "payload_too_large" and too_big.pulled == 0
    endless = Client("/api/v1/datasets/", size=GIB, headers=token, chunk=64 * 1024).run()
    assert endless.error(413)["code"] == "payload_too_large"
    assert endless.pulled <= 201_000 + 64 * 1024


def test_multipart_gets_the_upload_limit_only_on_upload_routes_and_with_credentials(
        tenant_a, settings):
    settings.MAX_REQUEST_BYTES = 1000
    body, content_type = multipart({"name": "P"}, "file", "d.zip", b"z" * 5000)
    token = {"Authorization": f"Bearer {tenant_a.token}", "Content-Type": content_type}

    elsewhere = Client("/api/v1/projects/", body, declared=len(body), headers=token).run()
    assert elsewhere.error(413)["code"] == "payload_too_large" and elsewhere.pulled == 0
    anonymous = Client("/api/v1/datasets/", body, declared=len(body),
                       headers={"Content-Type": content_type}).run()
    assert anonymous.error(413)["code"] == "payload_too_large" and anonymous.pulled == 0
    anonymous_chunked = Client("/api/v1/datasets/", body,
                               headers={"Content-Type": content_type}).run()
    assert anonymous_chunked.error(413)["code"] == "payload_too_large"
    assert anonymous_chunked.pulled <= 1200


def test_the_prediction_gateway_is_guarded_the_same_way(settings):
    settings.MAX_REQUEST_BYTES = 1000
    settings.SERVING_MAX_IMAGE_BYTES = 3000
    key = {"Authorization": "Bearer svk_unknown"}

    declared = Client(PREDICT, size=2 * GIB, declared=2 * GIB, headers={**key, **JSON}).run()
    assert declared.error(413)["code"] == "payload_too_large" and declared.pulled == 0
    chunked = Client(PREDICT, size=100_000, headers={**key, **JSON}).run()
    assert chunked.error(413)["code"] == "payload_too_large" and chunked.pulled <= 1200

    body, content_type = multipart({}, "image", "i.png", b"p" * 2500)
    image = Client(PREDICT, body, headers={**key, "Content-Type": content_type}).run()
    assert image.error(401)["code"] == "not_authenticated", "within the image limit it reached " \
                                                             "the view"
    over = Client(PREDICT, size=5000, declared=5000,
                  headers={**key, "Content-Type": content_type}).run()
    assert over.error(413)["code"] == "payload_too_large" and over.pulled == 0


def test_the_django_chain_applies_the_same_rule_to_the_test_clients_bodies(
        api, tenant_a, settings):
    settings.MAX_REQUEST_BYTES = 1000
    body, content_type = multipart({"name": "P"}, "file", "d.zip", b"z" * 5000)

    response = api.as_(tenant_a).generic("POST", "/api/v1/projects/", body, content_type)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
