"""Pagination in the API's list shape: {"results": [...], "next": url-or-null}."""

from rest_framework import pagination
from rest_framework.response import Response


class CursorPagination(pagination.CursorPagination):
    """Opaque cursors, stable under inserts; newest first unless a view says otherwise."""

    ordering = "-created_at"
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_paginated_response(self, data: list) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True},
            },
        }
