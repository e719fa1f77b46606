"""Query parameters, parsed in one place: every filter value of every view goes through here.

A value that is not what the parameter takes is a 400 `invalid` naming the parameter in
`fields`, never a 500 further down (a NUL byte PostgreSQL refuses, a date past year 9999, an
integer no column holds). `?format=` is read by the view itself (see FormatParamNegotiation).
"""

import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.settings import api_settings

from core.errors import ValidationFailed

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d{1,19}$")
# Control characters: PostgreSQL refuses NUL in text, and none belongs in a filter value.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BIGINT_MAX = 2**63 - 1
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})
MOMENT_HELP = "An ISO date (2026-03-01) or datetime (2026-03-01T12:00:00Z), up to year 9999."


def invalid(name: str, why: str, message: str | None = None) -> ValidationFailed:
    """The 400 for query parameter `name`."""
    return ValidationFailed(message or f"{name}: {why}", fields={name: [why]})


def parse_moment(raw: str, *, end: bool) -> datetime | None:
    """An ISO datetime (UTC when it has no offset) or date, as UTC; None when it is neither,
    or when it (or, for a date as an `end`, its next midnight) is not within years 1 to 9999
    in UTC.

    A bare date is its midnight, or, as the `end` of a period, the next midnight: the whole
    day is in.
    """
    value = raw.strip().replace(" ", "+")  # an unescaped "+01:00" arrives as " 01:00"
    try:
        if _DATE.match(value):
            day = parse_date(value)
            if day is None:
                return None
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = parse_datetime(value)
        if moment is None:
            return None
        # astimezone past 9999-12-31 or before 0001-01-01 overflows: out of range too
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# The names read during a request, when a caller collects them (a test that checks each
# route's schema documents every filter it reads).
READ: ContextVar[set[str] | None] = ContextVar("query_params_read", default=None)


def _raw(request: Request, name: str) -> str | None:
    """The parameter's value; None when absent or blank; 400 when repeated or on control
    characters."""
    read = READ.get()
    if read is not None:
        read.add(name)
    values = request.query_params.getlist(name)
    if len(values) > 1:  # which one was meant? never pick one silently
        raise invalid(name, "Give this parameter once.")
    value = values[0] if values else None
    if value is None or not value.strip():
        return None
    if CONTROL.search(value):
        raise invalid(name, "Control characters are not allowed.")
    return value.strip()


def text_param(request: Request, name: str, *, max_length: int = 200) -> str | None:
    """A free-text filter value (stripped), or None when absent or blank."""
    value = _raw(request, name)
    if value is not None and len(value) > max_length:
        raise invalid(name, f"At most {max_length} characters.")
    return value


def uuid_param(request: Request, name: str) -> uuid.UUID | None:
    """An id, or None when absent or blank."""
    value = _raw(request, name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(name, "Not an id.", f"{name} must be an id.") from None


def int_param(request: Request, name: str, *, low: int = 0, high: int = BIGINT_MAX,
              default: int | None = None) -> int | None:
    """An integer from `low` to `high`, or `default` when absent or blank."""
    value = _raw(request, name)
    if value is None:
        return default
    if not _INTEGER.match(value):
        raise invalid(name, "Not an integer.", f"{name} must be an integer.")
    number = int(value)
    if not low <= number <= high:
        raise invalid(name, f"Must be {low} to {high}.", f"{name} must be {low} to {high}.")
    return number


def bool_param(request: Request, name: str, default: bool | None = None) -> bool | None:
    """true/false (also 1/0, yes/no, any case), or `default` when absent or blank."""
    value = _raw(request, name)
    if value is None:
        return default
    if value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    raise invalid(name, "Must be true or false.", f"{name} must be true or false.")


def choice_param(request: Request, name: str, choices: Iterable[str],
                 default: str | None = None) -> str | None:
    """One of `choices`, or `default` when absent or blank."""
    value = _raw(request, name)
    if value is None:
        return default
    allowed = list(choices)
    if value not in allowed:
        raise invalid(name, f"Use one of {', '.join(allowed)}.",
                      f"{name} must be one of {', '.join(allowed)}.")
    return value


def moment_param(request: Request, name: str, *, end: bool = False) -> datetime | None:
    """An ISO date or datetime as UTC (see parse_moment), or None when absent or blank."""
    value = _raw(request, name)
    if value is None:
        return None
    moment = parse_moment(value, end=end)
    if moment is None:
        raise invalid(name, "Not an ISO date or datetime from year 1 to 9999.",
                      f"{name} must be {MOMENT_HELP[0].lower()}{MOMENT_HELP[1:]}")
    return moment


class FormatParamNegotiation(DefaultContentNegotiation):
    """`?format=` is answered by the view (csv, text...): negotiate as if none were asked.

    DRF reads `format` (URL_FORMAT_OVERRIDE) as a renderer name and 404s on one it lacks;
    here the view checks the value, and errors still leave as JSON in the API's shape.
    """

    def select_renderer(self, request: Request, renderers: list,
                        format_suffix: str | None = None) -> tuple:
        if format_param(request) is not None and not format_suffix:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


def format_param(request: Request) -> str | None:
    """The lower-cased `?format=` value, or None."""
    value = request.query_params.get(api_settings.URL_FORMAT_OVERRIDE or "format")
    return value.lower() if value is not None else None
