"""Fallback views that keep the API's error shape for unknown URLs and crashes."""

import sys

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core import dbconnections
from core.exceptions import error_response


# Exempt: an unknown URL is a 404 in the API's shape whatever the method, never Django's HTML
# 403 for a cookie without a CSRF token.
@csrf_exempt
def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """404 `not_found` in the API's error shape."""
    return error_response("not_found", "Not found.", 404)


def server_error(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception: a crash because no database connection
    # freed up in time (outside DRF's handler: middleware, HTML views, the prediction gateway)
    # is a 503 to retry, not a 500.
    if dbconnections.pool_exhausted(sys.exc_info()[1]):
        busy = dbconnections.busy()
        response = error_response(busy.code, busy.message, busy.status)
        for name, value in busy.headers.items():
            response[name] = value
        return response
    return error_response("server_error", "Something went wrong on our side; it was logged.", 500)
