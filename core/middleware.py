"""Request id on every response and in event metadata; a ceiling on request bodies."""

import re
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core import context
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
    """Refuse oversize bodies with 413 before anything reads them.

    Multipart bodies (uploads) get MAX_UPLOAD_BYTES; everything else MAX_REQUEST_BYTES.
    """

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        """The 400/413 for a body this service will not read, else None."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response("malformed_request", "Content-Length is not a number.", 400)
        is_upload = request.content_type == "multipart/form-data"
        limit = settings.MAX_UPLOAD_BYTES if is_upload else settings.MAX_REQUEST_BYTES
        if length > limit:
            return error_response(
                "payload_too_large",
                f"The request body has {length} bytes; at most {limit} are accepted here.",
                413,
            )
        return None

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Sync mode."""
        return self.refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Async mode."""
        return self.refusal(request) or await self.get_response(request)
