"""A crash under /api/ answers the API's error shape (500 `server_error`), even with DEBUG on.

With DEBUG (`make run`), Django answers an uncaught exception with its HTML debug page; an API
client gets JSON in the API's error shape (docs/errors.md) instead, and the traceback goes to
the log as it would with DEBUG off. HTML views (the console) keep the debug page. Three doors,
one answer: `api_exception_handler` for DRF views (the prediction gateway's included),
`ApiCrashMiddleware` for anything else Django routes under /api/, and `guarded` for the
prediction gateway's lean chain, which has no middleware to hook.

What Django itself answers with a 4xx (a query or body it refuses to read: too many fields, too
large; a missing object; a refusal) keeps its status there, in the error shape too.
"""

import json
import logging
import sys
from collections.abc import Awaitable, Callable

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import get_resolver, get_urlconf
from django.utils.deprecation import MiddlewareMixin
from rest_framework.response import Response

from core.error_shape import error_response

API_PREFIX = "/api/"
logger = logging.getLogger("django.request")


def is_api(request: HttpRequest) -> bool:
    """Whether the request is for the API (JSON answers only)."""
    return request.path.startswith(API_PREFIX)


def crash_response(request: HttpRequest) -> HttpResponse:
    """The answer Django gives an uncaught exception with DEBUG off (handler500), signalled and
    logged as Django does; call it while handling the exception."""
    # error reporters listen to this signal; the test client re-raises the exception from it
    got_request_exception.send(sender=None, request=request)
    logger.error("Internal Server Error: %s", request.path, exc_info=sys.exc_info(),
                 extra={"status_code": 500, "request": request})
    response = get_resolver(get_urlconf()).resolve_error_handler(500)(request)
    response._has_been_logged = True  # Django's own log line would repeat it, without traceback
    return response


# What Django answers with a 400 itself: a query or body it refuses to read (too many fields,
# too large to hold, a broken multipart body).
UNREADABLE = (SuspiciousOperation, BadRequest, MultiPartParserError)


def refused(request: HttpRequest, exc: Exception) -> str:
    """The message for an UNREADABLE request, logged as Django logs it (django.security)."""
    if isinstance(exc, SuspiciousOperation):
        logging.getLogger(f"django.security.{type(exc).__name__}").error(
            str(exc), exc_info=exc, extra={"status_code": 400, "request": request})
    return f"The request could not be read: {exc}"


def django_error_response(request: HttpRequest, exc: Exception) -> HttpResponse | None:
    """The 4xx Django gives `exc` (None for any other exception), in the error shape."""
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", 404)
    if isinstance(exc, PermissionDenied):
        return error_response("permission_denied", "Your role does not allow this.", 403)
    if isinstance(exc, UNREADABLE):
        return error_response("malformed_request", refused(request, exc), 400)
    return None


def drf_crash_response(request: HttpRequest) -> Response:
    """`crash_response` as a DRF Response, for DRF's exception handler: DRF finalizes and
    renders what its views answer (the prediction gateway renders it outside dispatch)."""
    answer = crash_response(request)
    headers = {name: value for name, value in answer.items()
               if name.lower() not in ("content-type", "content-length")}
    response = Response(json.loads(answer.content), status=answer.status_code, headers=headers)
    response._has_been_logged = True
    return response


class ApiCrashMiddleware(MiddlewareMixin):
    """An exception a view under /api/ raised, answered in the API's shape."""

    def process_exception(self, request: HttpRequest, exception: Exception
                          ) -> HttpResponse | None:
        """The error shape for API paths; other paths keep Django's handling."""
        if not is_api(request):
            return None
        return django_error_response(request, exception) or crash_response(request)


def guarded(view: Callable[[HttpRequest], Awaitable[HttpResponse]]
            ) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    """An asynchronous API view whose exceptions answer as ApiCrashMiddleware's do, for a
    chain without process_exception."""

    async def guarded_view(request: HttpRequest) -> HttpResponse:
        try:
            return await view(request)
        except Exception as exc:
            return django_error_response(request, exc) or crash_response(request)

    return guarded_view
