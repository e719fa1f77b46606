"""Pagination in the API's list shape: {"results": [...], "next": url-or-null}."""

from base64 import b64decode
from datetime import UTC, datetime
from typing import Any
from urllib import parse

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.links import on_public_url
from core.query_params import BIGINT_MAX, CONTROL, int_param, invalid

_BAD_CURSOR = "Not a cursor this API handed out; start again without it."


class CursorPagination(pagination.CursorPagination):
    """Opaque cursors, stable under inserts; newest first unless a view says otherwise.

    A cursor is base64 of the client's choosing: anything but one this API could have
    handed out (garbled, forged, a position its ordering column cannot hold) is a 400 on
    `cursor`, and a `limit` that is not a positive integer a 400 on `limit`.
    """

    ordering = "-created_at"
    page_size_query_param = "limit"
    max_page_size = 1000

    def paginate_queryset(self, queryset: QuerySet, request: Request,
                          view: Any = None) -> list | None:
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        """`?limit=` from 1 up (above the maximum it is the maximum), else the default."""
        asked = int_param(request, self.page_size_query_param, low=1)
        return self.page_size if asked is None else min(asked, self.max_page_size)

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        """The cursor (as DRF encodes one), each token checked; 400 on `cursor` otherwise."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            tokens = parse.parse_qs(b64decode(encoded.encode("ascii"), validate=True)
                                    .decode("ascii"), keep_blank_values=True,
                                    strict_parsing=True, max_num_fields=3)
            offset, reverse = tokens.pop("o", ["0"]), tokens.pop("r", ["0"])
            position = tokens.pop("p", [None])
            if tokens or len(offset) != 1 or len(reverse) != 1 or len(position) != 1:
                raise ValueError("unknown or repeated token")
            if not (offset[0].isdigit() and 0 <= int(offset[0]) <= self.offset_cutoff
                    and reverse[0] in ("0", "1")):
                raise ValueError("offset or direction out of range")
        except (ValueError, TypeError):  # binascii.Error and UnicodeError are ValueErrors
            raise invalid(self.cursor_query_param, _BAD_CURSOR) from None
        return pagination.Cursor(offset=int(offset[0]), reverse=reverse[0] == "1",
                                 position=None if position[0] is None
                                 else self._position(position[0]))

    def _position(self, raw: str) -> object:
        """The position as the ordering column's value, or a 400 on `cursor`."""
        column = self.ordering[0].lstrip("-")
        try:
            field = self._model._meta.get_field(column)
        except (AttributeError, FieldDoesNotExist):  # not a model's queryset: DRF's own way
            return raw
        if CONTROL.search(raw):
            raise invalid(self.cursor_query_param, _BAD_CURSOR)
        try:
            value = field.to_python(raw)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise invalid(self.cursor_query_param, _BAD_CURSOR) from None
        if not _storable(field, value):
            raise invalid(self.cursor_query_param, _BAD_CURSOR)
        return value

    def get_paginated_response(self, data: list) -> Response:
        # DRF builds the link on the request's Host; answers link to PUBLIC_URL instead.
        return Response({"results": data, "next": on_public_url(self.get_next_link())})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True},
            },
        }


class OnePage(pagination.BasePagination):
    """Every row in one page of the list shape (`next` is always null): for lists that stay
    short by nature, such as a tenant's balance per compute spec."""

    def paginate_queryset(self, queryset: QuerySet, request: Request,
                          view: Any = None) -> list:
        return list(queryset)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": None})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return CursorPagination.get_paginated_response_schema(self, schema)


def _storable(field: models.Field, value: object) -> bool:
    """Whether a database compares `value` with `field` without an error of its own."""
    if value is None:
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return -BIGINT_MAX - 1 <= value <= BIGINT_MAX
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return False
        try:  # a time near year 1 or 9999 with an offset has no UTC equivalent
            value.astimezone(UTC)
        except OverflowError:
            return False
        return True
    if isinstance(value, str):
        return "\x00" not in value
    return True
