"""Every error code the API answers with, and the exception that carries one."""

from typing import ClassVar


class ApiError(Exception):
    """An error the API reports in its standard shape; subclasses fix the status and code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request is not valid."

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.fields = fields or {}
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(ApiError):
    status, code, default_message = 400, "invalid", "Some fields are not valid."


class NotAuthenticated(ApiError):
    status, code, default_message = 401, "not_authenticated", "Send a valid Bearer token."


class InvalidCredentials(ApiError):
    status, code, default_message = 401, "invalid_credentials", "Email or password is wrong."


class InsufficientFunds(ApiError):
    status, code, default_message = 402, "insufficient_funds", "The available balance is short."


class PermissionDenied(ApiError):
    status, code, default_message = 403, "permission_denied", "Your role does not allow this."


class NotFound(ApiError):
    status, code, default_message = 404, "not_found", "Not found."


class WrongState(ApiError):
    status, code = 409, "wrong_state"
    default_message = "The object is not in a state that allows this."


class VersionConflict(ApiError):
    status, code = 409, "version_conflict"
    default_message = "Someone else changed this object first; reload it and try again."


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class Throttled(ApiError):
    status, code, default_message = 429, "throttled", "Too many requests; slow down."


class Unavailable(ApiError):
    status, code, default_message = 503, "unavailable", "Try again shortly."


class InternalError(ApiError):
    status, code, default_message = 500, "internal_error", "Something failed on our side."
