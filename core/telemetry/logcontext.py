"""What every log line of the current request or job says it belongs to.

Set by the HTTP middleware (the request, then the route's task/evaluation/service id) and by the
worker middleware around each job (job id, actor, the ids in its arguments); read by
`ContextFilter`, which stamps each log record with them. The request id and the tenant are read
where they already live: the event metadata (core.context) and the request's authenticated
access (DRF sets `auth` on the Django request).
"""

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core import context

# The ids a log line may carry (besides request_id and tenant_id).
FIELDS = ("tenant_id", "task_id", "evaluation_id", "service_id", "dataset_id", "job_id",
          "actor", "queue")

_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_fields", default=None)
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("log_request", default=None)


@contextmanager
def bound(request: Any = None, **fields: object) -> Iterator[None]:
    """Run a block with these ids (and this request) on its log lines; restores after."""
    merged = {**(_fields.get() or {}),
              **{key: str(value) for key, value in fields.items() if value is not None}}
    tokens = [_fields.set(merged)]
    if request is not None:
        tokens.append(_request.set(request))
    try:
        yield
    finally:
        for token in reversed(tokens):
            token.var.reset(token)


def bind(**fields: object) -> None:
    """Add ids to the current block's log lines (the block that `bound` opened, if any)."""
    current = _fields.get()
    if current is None:
        return
    current.update({key: str(value) for key, value in fields.items() if value is not None})


def current() -> dict[str, str]:
    """The ids in force now: request id, tenant id and whatever the block bound."""
    found = dict(_fields.get() or {})
    request_id = context.current().request_id
    if request_id:
        found["request_id"] = request_id
    if "tenant_id" not in found:
        access = getattr(_request.get(), "auth", None)  # set once DRF authenticated the caller
        tenant_id = getattr(access, "tenant_id", None)
        if tenant_id is not None:
            found["tenant_id"] = str(tenant_id)
    return found


class ContextFilter(logging.Filter):
    """Stamp each record with the current ids (attributes the JSON formatter writes out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record; only adds to it."""
        found = current()
        request = getattr(record, "request", None)
        if "request_id" not in found and request is not None:
            # Django logs a 4xx answer (django.request) after the middleware chain has
            # returned, outside the request's context, but hands over the request itself.
            found.update(_of_request(request))
        for key, value in found.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _of_request(request: Any) -> dict[str, str]:
    found = {}
    request_id = getattr(request, "request_id", None)
    if isinstance(request_id, str):
        found["request_id"] = request_id
    tenant_id = getattr(getattr(request, "auth", None), "tenant_id", None)
    if tenant_id is not None:
        found["tenant_id"] = str(tenant_id)
    return found
