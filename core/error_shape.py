"""The API's error shape (docs/errors.md): `{"error": {"code", "message", "fields"}}`, as a
body and as a plain Django response (middleware, URL fallbacks, Django's own 4xx)."""

from typing import Any

from django.http import JsonResponse


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict:
    """The API's error shape (docs/errors.md)."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(code: str, message: str, status: int,
                   fields: dict | None = None) -> JsonResponse:
    """A plain Django response in the API's error shape, for middleware and URL fallbacks."""
    return JsonResponse(error_body(code, message, fields), status=status)
