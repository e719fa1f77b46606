"""The API's errors as exceptions: each carries the answer's `code`, `message` and `fields`.

One class per family of codes, chosen by HTTP status; catch `ApiError` for all of them.
`Conflict` (409) answers name the rule that refused in `code` (`task_not_running`, ...).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer of the API, in its one shape {"error": {code, message, fields}}."""

    status: int = 0

    def __init__(self, code: str, message: str, fields: dict[str, list[str]] | None = None,
                 *, status: int | None = None, retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.fields = code, message, fields or {}
        self.status = status if status is not None else type(self).status
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: the request is not valid; `fields` says why for each field at fault."""

    status = 400


class Unauthorized(ApiError):
    """401: no valid credential (`not_authenticated`) or a wrong password."""

    status = 401


class PaymentRequired(ApiError):
    """402 `insufficient_funds`: the wallet's available balance is short."""

    status = 402


class Forbidden(ApiError):
    """403: your role does not allow this."""

    status = 403


class NotFound(ApiError):
    """404: no such object in your tenant (another tenant's objects are not found either)."""

    status = 404


class Conflict(ApiError):
    """409: the object's state refuses this; `code` names the rule."""

    status = 409


class PayloadTooLarge(ApiError):
    """413: the body (or the image) is too large."""

    status = 413


class Throttled(ApiError):
    """429: too many requests; `retry_after` says how long to wait."""

    status = 429


class ServerError(ApiError):
    """500 or 502: something failed on the server's side."""

    status = 500


class Unavailable(ApiError):
    """503: try again shortly (`retry_after`), or the service is not configured
    (`payments_not_configured`)."""

    status = 503


class TransportError(ApiError):
    """The platform could not be reached at all (no answer, or not the API's JSON)."""

    status = 0


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 402: PaymentRequired, 403: Forbidden, 404: NotFound,
    405: BadRequest, 406: BadRequest, 409: Conflict, 413: PayloadTooLarge, 415: BadRequest,
    429: Throttled, 500: ServerError, 502: ServerError, 503: Unavailable,
}


def from_answer(status: int, body: Any, retry_after: float | None = None) -> ApiError:
    """The exception for an error answer (its class from the status, details from the body)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": f"HTTP {status}", "fields": {}}
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else BadRequest)
    return cls(str(error.get("code", "http_error")), str(error.get("message", "")),
               error.get("fields") or {}, status=status, retry_after=retry_after)
