"""One exception handler: every error leaves the API in its one shape (docs/errors.md)."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core import crashes, dbconnections, errors
from core.error_shape import error_body
from core.error_shape import error_response as error_response  # where its importers look
from core.errors import ApiError

# DRF's own exceptions answer with the registry's codes (core.errors).
_DRF_CODES = {
    drf.ParseError: errors.MalformedRequest.code,
    drf.AuthenticationFailed: errors.NotAuthenticated.code,
    drf.NotAuthenticated: errors.NotAuthenticated.code,
    drf.PermissionDenied: errors.PermissionDenied.code,
    drf.NotFound: errors.NotFound.code,
    drf.MethodNotAllowed: errors.MethodNotAllowed.code,
    drf.NotAcceptable: errors.NotAcceptable.code,
    drf.UnsupportedMediaType: errors.UnsupportedMediaType.code,
    drf.Throttled: errors.Throttled.code,
}


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {msg}" for key, value in detail.items() for msg in _flatten(value)]
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten(item)]
    return [str(detail)]


def _fields(detail: dict) -> dict[str, list[str]]:
    return {key: _flatten(value) for key, value in detail.items()}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Turn any API exception into the error shape; an unknown one under /api/ is a 500
    `server_error` in that shape too, logged (core.crashes)."""
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, crashes.UNREADABLE) and "request" in context:
        exc = drf.ParseError(crashes.refused(context["request"]._request, exc))
    elif dbconnections.pool_exhausted(exc):
        exc = dbconnections.busy()

    if isinstance(exc, ApiError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status,
                        headers=exc.headers)
    if not isinstance(exc, drf.APIException):
        request = getattr(context.get("request"), "_request", None)
        if request is None or not crashes.is_api(request):
            return None  # Django's handling: the debug page with DEBUG, else handler500
        set_rollback()
        return crashes.drf_crash_response(request)

    set_rollback()
    headers = {}
    if isinstance(exc, drf.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            non_field = detail.pop("non_field_errors", None)
            fields = _fields(detail)
            message = "; ".join(_flatten(non_field)) if non_field else (
                "Some fields are not valid: " + ", ".join(sorted(fields)) + "."
            )
            return Response(error_body("invalid", message, fields), status=400, headers=headers)
        return Response(error_body("invalid", "; ".join(_flatten(detail))), status=400)

    code = _DRF_CODES.get(type(exc)) or next(
        (c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error"
    )
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
        status = 401
    else:
        status = exc.status_code
    message = " ".join(_flatten(exc.detail))
    return Response(error_body(code, message), status=status, headers=headers)
