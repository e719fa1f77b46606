"""The body limit at the ASGI door, before anything reads the body.

    application = BodyLimitGuard(app)     # config.asgi: around Django's chain and the gateway

Django's ASGIHandler (and the prediction gateway, which is one) reads the whole body into a
spooled temporary file before any middleware runs, so a limit checked in middleware comes after
the bytes are on disk. This guard answers first: a malformed Content-Length is a 400, a declared
length over the route's limit (core.body_limits) a 413 before one byte is read, and a body
without a length (chunked) is counted as it arrives and ends in a 413 at the limit: the app sees
a disconnect there and never receives the rest. The answers close the connection, so the server
does not read the unsent rest either.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from core import context
from core.body_limits import body_limit, declared_length, too_large_message
from core.errors import PayloadTooLarge
from core.exceptions import error_body
from core.middleware import _VALID_REQUEST_ID, REQUEST_ID_HEADER

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimitGuard:
    """Pure ASGI middleware: route body limits for HTTP requests; other scopes pass through."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse before reading, or pass a counting `receive` to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        try:
            declared = declared_length(headers.get("content-length", []))
        except ValueError:
            await _refuse(send, headers, 400, "malformed_request",
                          "Content-Length is not a number.")
            return
        limit = body_limit(_path_info(scope), _content_type(headers),
                          credentials=_has_credentials(headers))
        if declared is not None and declared > limit:
            await _refuse(send, headers, 413, PayloadTooLarge.code,
                          too_large_message(declared, limit))
            return
        counted = _CountedBody(receive, limit)
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted.receive, watched_send)
        if counted.over_limit and not started:
            await _refuse(send, headers, 413, PayloadTooLarge.code,
                          too_large_message(None, limit))


class _CountedBody:
    """`receive`, counting body bytes: past `limit` the app gets a disconnect instead of the
    chunk, and the server is not asked for more."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive, self.limit = receive, limit
        self.received = 0
        self.over_limit = False

    async def receive(self) -> Message:
        """The next message, or a disconnect once the body went over the limit."""
        if self.over_limit:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.over_limit = True
                return {"type": "http.disconnect"}
        return message


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def _path_info(scope: Scope) -> str:
    # as Django's ASGIRequest computes it: the path without the script prefix
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _content_type(headers: dict[str, list[str]]) -> str:
    return headers.get("content-type", [""])[0].split(";", 1)[0].strip().lower()


def _has_credentials(headers: dict[str, list[str]]) -> bool:
    cookie = f"{settings.SESSION_COOKIE_NAME}="
    return bool(headers.get("authorization")) or any(
        part.strip().startswith(cookie) for value in headers.get("cookie", [])
        for part in value.split(";"))


async def _refuse(send: Send, headers: dict[str, list[str]], status: int, code: str,
                  message: str) -> None:
    incoming = headers.get(REQUEST_ID_HEADER.lower(), [""])[0]
    request_id = incoming if _VALID_REQUEST_ID.match(incoming) else context.new_request_id()
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
        # the body's unread rest is not waited for: the connection ends with this answer
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
