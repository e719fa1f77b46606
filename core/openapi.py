"""The error registry (core.errors) in the OpenAPI schema.

Two schema components, `ErrorCode` (every code, its status and meaning) and `Error` (the error
shape), come from the registry. A view names what each of its operations can refuse:

    class TaskStopView(...):
        refuses = {"POST": (TaskNotRunning,)}     # or a tuple: the same for every method

and each of those operations documents, per status, the codes it may answer with.
"""

from collections.abc import Iterable
from typing import Any

from drf_spectacular.openapi import AutoSchema

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


def responses_for(errors: Iterable[type[ApiError]]) -> dict[str, dict[str, Any]]:
    """OpenAPI responses, one per status, naming the codes these errors answer with."""
    by_status: dict[int, list[type[ApiError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    return {str(status): {
        "description": _meanings(group),
        "content": {"application/json": {"schema": error_shape(
            {"type": "string", "enum": [error.code for error in group]})}},
    } for status, group in sorted(by_status.items())}


class ErrorCodeSchema(AutoSchema):
    """AutoSchema that adds the refusals a view declares in `refuses` to its operations."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The operation, with one response per status its refusals answer with."""
        operation = super().get_operation(*args, **kwargs)
        refuses = getattr(self.view, "refuses", ())
        if isinstance(refuses, dict):
            refuses = refuses.get(self.method, ())
        if operation is not None and refuses:
            operation.setdefault("responses", {}).update(responses_for(refuses))
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
    return result
