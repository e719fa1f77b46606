"""Who and what caused the current work: the metadata every appended event carries.

Set by the request middleware for HTTP, by the websocket consumer, and by workers from the
message that started them, so an event can always be traced to its request or job.
"""

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Metadata:
    request_id: str | None = None
    actor: str | None = None  # "user:<id>", "system", "worker:<name>", "staff:<id>"
    correlation_id: str | None = None
    causation_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        """Only the keys that are set, as stored on an event."""
        return {key: value for key, value in asdict(self).items() if value is not None}


# Metadata is frozen, so sharing the default instance is safe.
_current: contextvars.ContextVar[Metadata] = contextvars.ContextVar(
    "metadata", default=Metadata()  # noqa: B039
)


def current() -> Metadata:
    """The metadata in force for the code running now."""
    return _current.get()


@contextmanager
def scope(**changes: str | None) -> Iterator[Metadata]:
    """Run a block with some metadata fields replaced; restores the previous values after."""
    token = _current.set(replace(_current.get(), **changes))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def new_request_id() -> str:
    """A fresh request id."""
    return uuid.uuid4().hex
