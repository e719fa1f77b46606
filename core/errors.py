"""Every error code the API answers with, and the exception that carries one.

`registry()` is the one list: the OpenAPI schema (core.openapi) and the README's table
(`markdown_table()`) are made from it. A new code is a new class here, never a string elsewhere.
"""

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


class MalformedRequest(ApiError):
    status, code = 400, "malformed_request"
    default_message = "The request body or a header cannot be parsed; send well-formed JSON."


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


# The specific refusals: each names what the client must change before trying again. They are
# WrongState subclasses, so `except WrongState` still catches every one of them.


class TaskNotRunning(WrongState):
    code = "task_not_running"
    default_message = "The task has ended; only a queued or running task can be stopped."


class TaskNotRestartable(WrongState):
    code = "task_not_restartable"
    default_message = ("The task is queued, running or succeeded; only a failed, stopped or "
                       "interrupted task can be restarted.")


class DatasetNotReady(WrongState):
    code = "dataset_not_ready"
    default_message = ("The dataset is not validated (ready); wait for its validation, or upload "
                       "a fixed version.")


class DatasetIsArchived(WrongState):
    code = "dataset_archived"
    default_message = "The dataset is archived (deleted); it can no longer change."


class DatasetUnreadable(WrongState):
    code = "dataset_unreadable"
    default_message = ("The stored zip of this dataset version cannot be read; upload a new "
                       "version of the dataset.")


class NotLatestVersion(WrongState):
    code = "not_latest_version"
    default_message = ("A newer version of this dataset exists; change the newest version, so "
                       "that no change is lost.")


class ProjectIsArchived(WrongState):
    code = "project_archived"
    default_message = "The project is archived; it can no longer change."


class LastOwner(WrongState):
    code = "last_owner"
    default_message = "A tenant keeps at least one owner; make someone else owner first."


class EvaluationNotRunning(WrongState):
    code = "evaluation_not_running"
    default_message = ("The evaluation has ended; only a queued or running evaluation can be "
                       "stopped.")


class EvaluationNotSucceeded(WrongState):
    code = "evaluation_not_succeeded"
    default_message = ("The evaluation has not succeeded; its reports exist once it has. Wait "
                       "for it, or start a new evaluation if it failed or was stopped.")


class ServiceNotRunning(WrongState):
    code = "service_not_running"
    default_message = ("The service is not running; it answers predictions and takes another "
                       "model only while running.")


class ServiceEnded(WrongState):
    code = "service_ended"
    default_message = ("The service is stopping or has ended; publish the model again as a new "
                       "service.")


class AlreadyMetered(WrongState):
    code = "already_metered"
    default_message = "The resource is already metered; stop its meter first."


class VersionConflict(ApiError):
    status, code = 409, "version_conflict"
    default_message = "Someone else changed this object first; reload it and try again."


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"
    default_message = "This route does not take that method."


class NotAcceptable(ApiError):
    status, code, default_message = 406, "not_acceptable", "The API answers in JSON; accept it."


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"
    default_message = "Send JSON, or multipart for uploads."


class Throttled(ApiError):
    status, code, default_message = 429, "throttled", "Too many requests; slow down."


class Unavailable(ApiError):
    status, code, default_message = 503, "unavailable", "Try again shortly."


# Top-ups and the Stripe webhook (billing.topups).

class PaymentsNotConfigured(ApiError):
    status, code = 503, "payments_not_configured"
    default_message = ("Payments are not configured on this installation; its operator must set "
                       "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.")


class PaymentProviderUnavailable(ApiError):
    status, code = 502, "payment_provider_unavailable"
    default_message = "Stripe did not answer as expected; nothing was charged. Try again shortly."


class InvalidSignature(ApiError):
    status, code = 400, "invalid_signature"
    default_message = "The Stripe-Signature header does not match this payload."


class IdempotencyKeyReused(ApiError):
    status, code = 409, "idempotency_key_reused"
    default_message = ("This Idempotency-Key already created a top-up of another amount; send a "
                       "new key for a new top-up.")


class TopupNotPaidYet(ApiError):
    """A refund that arrives before the deposit: answered 409 so that Stripe delivers it again."""

    status, code = 409, "topup_not_paid_yet"
    default_message = "The top-up this refund belongs to is not paid yet; deliver it again later."


class InternalError(ApiError):
    status, code, default_message = 500, "internal_error", "Something failed on our side."


class ServerError(ApiError):
    status, code = 500, "server_error"
    default_message = "Something went wrong on our side; it was logged."


def registry() -> list[type[ApiError]]:
    """Every error class of this module, in the order defined: the one list of codes."""
    return [value for value in globals().values()
            if isinstance(value, type) and issubclass(value, ApiError)
            and value.__module__ == __name__]


def markdown_table() -> str:
    """The registry as the README's table: code, status, meaning."""
    rows = [f"| `{error.code}` | {error.status} | {error.default_message} |"
            for error in sorted(registry(), key=lambda error: error.status)]
    return "\n".join(["| code | status | meaning |", "|---|---|---|", *rows])
