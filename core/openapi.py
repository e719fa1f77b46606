"""The error registry (core.errors) in the OpenAPI schema.

Two schema components, `ErrorCode` (every code, its status and meaning) and `Error` (the error
shape), come from the registry. Every operation documents the errors any operation of its kind
can answer with (`common_errors`: a bad parameter or body, a missing credential, a role that
does not allow it, an object not found, a body too large, throttling, a busy database), and a
view names what else each of its operations can refuse:

    class TaskStopView(...):
        refuses = {"POST": (TaskNotRunning,)}     # or a tuple: the same for every method

so each operation documents, per status, every code it may answer with.
"""

from collections.abc import Iterable
from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers as drf_serializers

from core import errors
from core.errors import ApiError, registry

COMPONENT = "ErrorCode"
SHAPE = "Error"


def error_shape(code_schema: dict[str, Any]) -> dict[str, Any]:
    """The API's error body, with `code` described by `code_schema`."""
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": code_schema,
                "message": {"type": "string", "description": "What went wrong, for a person."},
                "fields": {"type": "object",
                           "additionalProperties": {"type": "array", "items": {"type": "string"}},
                           "description": "Why each field at fault is; {} when none is."},
            },
        }},
    }


def _meanings(errors: Iterable[type[ApiError]]) -> str:
    return "\n".join(f"- `{error.code}` ({error.status}): {error.default_message}"
                     for error in errors)


# Statuses whose answers say when to come back: a client waits `Retry-After` seconds.
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0},
                               "description": "Seconds to wait before trying again."}}
# Any operation: a query parameter or body at fault, an Accept the API cannot answer, no
# database connection free in time.
ANY_OPERATION = (errors.ApiError, errors.ValidationFailed, errors.MalformedRequest,
                 errors.NotAcceptable, errors.Unavailable)
# An operation that authenticates: a bad or missing credential, a role that does not allow it.
AUTHENTICATED = (errors.NotAuthenticated, errors.PermissionDenied)
# An operation with a body: too large, or in a media type the route does not parse.
WITH_BODY = (errors.PayloadTooLarge, errors.UnsupportedMediaType)


def responses_for(errors: Iterable[type[ApiError]]) -> dict[str, dict[str, Any]]:
    """OpenAPI responses, one per status, naming the codes these errors answer with."""
    by_status: dict[int, list[type[ApiError]]] = {}
    for error in errors:
        group = by_status.setdefault(error.status, [])
        if error not in group:
            group.append(error)
    responses: dict[str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        responses[str(status)] = {
            "description": _meanings(group),
            "content": {"application/json": {"schema": error_shape(
                {"type": "string", "enum": [error.code for error in group]})}},
        }
        if status in (429, 503):
            responses[str(status)]["headers"] = dict(RETRY_AFTER)
    return responses


class ErrorCodeSchema(AutoSchema):
    """AutoSchema that documents every error an operation can answer with: those of its kind
    (`common_errors`) and the refusals its view declares in `refuses`."""

    def common_errors(self, operation: dict[str, Any]) -> list[type[ApiError]]:
        """The errors any operation shaped like this one can answer with."""
        found: list[type[ApiError]] = list(ANY_OPERATION)
        if self.view.get_throttles():
            found.append(errors.Throttled)
        if self.view.get_authenticators():
            found += AUTHENTICATED
        if "{" in self.path or self.method in ("PUT", "PATCH", "DELETE"):
            found.append(errors.NotFound)
        if "requestBody" in operation or self.method in ("POST", "PUT", "PATCH"):
            found += WITH_BODY
        return found

    def map_parsers(self) -> list[Any]:
        """JSON only, unless the body carries a file: the API's bodies are JSON, and a form
        is read for uploads (DRF reads one anywhere, but nothing else is promised)."""
        media_types = super().map_parsers()
        serializer = self.get_request_serializer()
        fields = getattr(serializer, "fields", None) if serializer is not None else None
        if isinstance(serializer, type):
            fields = serializer().fields
        takes_files = fields is None or any(
            isinstance(field, drf_serializers.FileField) for field in fields.values())
        if takes_files or "application/json" not in media_types:
            return media_types
        return ["application/json"]

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The operation, with one response per status its errors answer with."""
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        refuses = getattr(self.view, "refuses", ())
        if isinstance(refuses, dict):
            refuses = refuses.get(self.method, ())
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and not parameter.get("required"):
                # core.query_params reads a blank value as an absent one
                parameter["allowEmptyValue"] = True
        responses = operation.setdefault("responses", {})
        for status, response in responses_for([*self.common_errors(operation),
                                               *refuses]).items():
            said = responses.get(status, {})
            if "content" in said and not status.startswith(("4", "5")):
                continue
            if said.get("description"):  # what the view adds about when it answers so
                response["description"] += "\n\n" + said["description"]
            responses[status] = response
        return operation


def add_error_components(result: dict[str, Any], generator: Any, request: Any,
                         public: bool) -> dict[str, Any]:
    """Postprocessing hook: publish the whole registry as `ErrorCode` and the shape as `Error`."""
    errors = registry()
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[COMPONENT] = {
        "type": "string",
        "enum": [error.code for error in errors],
        "description": "Every error code the API answers with, its status and meaning:\n"
                       + _meanings(errors),
    }
    schemas[SHAPE] = error_shape({"$ref": f"#/components/schemas/{COMPONENT}"})
    _share_error_answers(result, schemas)
    return result


def _share_error_answers(result: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Each error answer's body as one component per set of codes (`Error.invalid.not_found`
    ...), referred to by every operation answering with that set: written once, not per
    operation."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                body = response.get("content", {}).get("application/json", {})
                shape = body.get("schema", {})
                if not status.startswith(("4", "5")) or "properties" not in shape:
                    continue
                codes = shape["properties"]["error"]["properties"]["code"].get("enum")
                if not codes:
                    continue
                name = ".".join([SHAPE, *codes])
                schemas.setdefault(name, shape)
                body["schema"] = {"$ref": f"#/components/schemas/{name}"}
