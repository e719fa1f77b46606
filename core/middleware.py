"""Request id on every response and in event metadata; a ceiling on request bodies."""

import re
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core import context
from core.body_limits import body_limit, declared_length, too_large_message
from core.exceptions import error_response

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"


class _BothModes:
    """A middleware that runs in the chain's own mode, sync or async, so that under ASGI it adds
    no thread hop: subclasses define `handle` (sync) and `__acall__` (async)."""

    sync_capable = async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]
                 | Callable[[HttpRequest], Awaitable[HttpResponse]]):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        return self.__acall__(request) if self.is_async else self.handle(request)


class RequestIdMiddleware(_BothModes):
    """Take the caller's X-Request-ID when sane, else make one; echo it and stamp events with it."""

    @staticmethod
    def _request_id(request: HttpRequest) -> str:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request.request_id = (incoming if _VALID_REQUEST_ID.match(incoming)
                              else context.new_request_id())
        return request.request_id

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Sync mode."""
        request_id = self._request_id(request)
        with context.scope(request_id=request_id, correlation_id=request_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Async mode."""
        request_id = self._request_id(request)
        with context.scope(request_id=request_id, correlation_id=request_id):
            response = await self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestSizeLimitMiddleware(_BothModes):
    """Refuse oversize bodies with 413 before the view reads them, by the route's limit
    (core.body_limits). Under ASGI, core.asgi_limits has refused them before the body was even
    read; this is the same rule for the test client and WSGI, which hand over the body unread.
    """

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        """The 400/413 for a body this service will not read, else None."""
        raw = request.META.get("CONTENT_LENGTH")
        try:
            length = declared_length([raw] if raw else [])
        except ValueError:
            return error_response("malformed_request", "Content-Length is not a number.", 400)
        credentials = ("HTTP_AUTHORIZATION" in request.META
                       or settings.SESSION_COOKIE_NAME in request.COOKIES)
        limit = body_limit(request.path_info, request.content_type, credentials=credentials)
        if length is not None and length > limit:
            return error_response("payload_too_large", too_large_message(length, limit), 413)
        return None

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Sync mode."""
        return self.refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Async mode."""
        return self.refusal(request) or await self.get_response(request)
