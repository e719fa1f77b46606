"""Event types: small past-tense dataclasses with a name and a schema version, plus upcasters.

    @event("ProjectRenamed", version=2)
    @dataclass(frozen=True)
    class ProjectRenamed:
        name: str
        previous_name: str

    @upcaster("ProjectRenamed", from_version=1)
    def _(data: dict) -> dict:
        return {**data, "previous_name": ""}

Stored rows are never rewritten: an old row is upcast on read, one version at a time.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_types: dict[str, type] = {}
_versions: dict[str, int] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


class UnknownEventType(LookupError):
    pass


def event(name: str, *, version: int = 1) -> Callable[[type[T]], type[T]]:
    """Register a dataclass as the current schema of event type `name`."""

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            cls = dataclasses.dataclass(frozen=True)(cls)
        if name in _types and _types[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"event type {name!r} is already registered by {_types[name]}")
        cls.event_type = name
        cls.schema_version = version
        _types[name] = cls
        _versions[name] = version
        return cls

    return register


def upcaster(name: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning `name`'s data at `from_version` into `from_version + 1`."""

    def register(fn: Upcaster) -> Upcaster:
        _upcasters[(name, from_version)] = fn
        return fn

    return register


def type_name(payload: object) -> str:
    """The registered name of an event instance."""
    try:
        return payload.event_type  # type: ignore[attr-defined]
    except AttributeError:
        raise UnknownEventType(f"{type(payload).__name__} is not a registered event") from None


def current_version(name: str) -> int:
    """The schema version new events of this type are written with."""
    return _versions.get(name, 1)


def to_data(payload: object) -> dict[str, Any]:
    """The JSON-ready data of an event instance (shallow: events hold JSON values, not objects)."""
    return {
        f.name: (dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
        for f in dataclasses.fields(payload)  # type: ignore[arg-type]
        for value in (getattr(payload, f.name),)
    }


def upcast(name: str, schema_version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Bring stored data up to the current schema of its type."""
    target = current_version(name)
    while schema_version < target:
        step = _upcasters.get((name, schema_version))
        if step is None:
            raise LookupError(f"no upcaster for {name} v{schema_version} -> v{schema_version + 1}")
        data = step(dict(data))
        schema_version += 1
    return schema_version, data


def instantiate(name: str, data: dict[str, Any]) -> object:
    """The event instance for (already upcast) data."""
    try:
        cls = _types[name]
    except KeyError:
        raise UnknownEventType(name) from None
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in known})
