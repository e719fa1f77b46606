"""Fallback views that keep the API's error shape for unknown URLs and crashes."""

from django.http import HttpRequest, JsonResponse

from core.exceptions import error_response


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response("not_found", "Not found.", 404)


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response("server_error", "Something went wrong on our side; it was logged.", 500)
