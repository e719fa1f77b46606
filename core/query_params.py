"""Query parameters many views share: ISO moments, and `?format=` read by the view itself."""

import re
from datetime import UTC, datetime, timedelta

from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.settings import api_settings

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(raw: str, *, end: bool) -> datetime | None:
    """An ISO datetime (UTC when it has no offset) or date, as UTC; None when it is neither.

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
    except ValueError:
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
