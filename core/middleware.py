"""Request id on every response and in event metadata; a ceiling on request bodies."""

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core import context
from core.exceptions import error_response

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Take the caller's X-Request-ID when sane, else make one; echo it and stamp events with it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else context.new_request_id()
        request.request_id = request_id
        with context.scope(request_id=request_id, correlation_id=request_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestSizeLimitMiddleware:
    """Refuse oversize bodies with 413 before anything reads them.

    Multipart bodies (uploads) get MAX_UPLOAD_BYTES; everything else MAX_REQUEST_BYTES.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
        return self.get_response(request)
