"""GET /api/v1/tasks/{id}/logs/: search, filter, tail and download a task's training log.

Filters: `q` (substring of the message, case-insensitive), `node` (exact), `level` (a minimum:
`WARNING` gives WARNING, ERROR and CRITICAL), `since` (inclusive) and `until` (exclusive) as ISO
datetimes, UTC without an offset (a bare date is that day's midnight; as `until` it includes
the day), `range` (`recent` = 15 minutes, `1h`, `24h`, `7d` before now; `since` wins over it).

Without `after`: the newest `limit` matching lines. With `after`: the oldest `limit` matching
lines whose cursor is larger (the tail). Either way sorted by time, then cursor, with
`next_after` to pass as `after` next time. `?format=text` or `download=1`: the matching lines
(the newest 100,000 at most, `limit` aside) as a `task-<id>.log` text attachment.
"""

from datetime import datetime, timedelta

from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import RoleAllows, tenant_access
from core.errors import NotFound
from core.query_params import FormatParamNegotiation, parse_moment
from tasklogs import queries
from tasklogs.models import Level
from tasks import api as tasks

TEXT = "text"
DOWNLOAD_MAX_LINES = 100_000
RANGES = {"recent": timedelta(minutes=15), "1h": timedelta(hours=1),
          "24h": timedelta(hours=24), "7d": timedelta(days=7)}


def _moment(name: str, raw: str, *, end: bool) -> datetime:
    moment = parse_moment(raw, end=end)
    if moment is None:
        raise serializers.ValidationError(
            f"{name} must be an ISO datetime (2026-03-01T12:00:00Z) or date (2026-03-01).")
    return moment


class LogQuery(serializers.Serializer):
    q = serializers.CharField(max_length=200, required=False, allow_blank=True,
                              trim_whitespace=False)
    node = serializers.CharField(max_length=200, required=False, allow_blank=True)
    level = serializers.CharField(max_length=16, required=False, allow_blank=True)
    since = serializers.CharField(max_length=64, required=False, allow_blank=True)
    until = serializers.CharField(max_length=64, required=False, allow_blank=True)
    range = serializers.ChoiceField(choices=list(RANGES), required=False, allow_blank=True)
    after = serializers.IntegerField(min_value=0, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    format = serializers.ChoiceField(choices=["json", TEXT], required=False)
    download = serializers.BooleanField(required=False, default=False)

    def validate_level(self, value: str) -> int | None:
        if not value:
            return None
        try:
            return Level[value.strip().upper()].value
        except KeyError:
            raise serializers.ValidationError(
                f"level must be one of {', '.join(Level.names)}.") from None

    def validate_since(self, value: str) -> datetime | None:
        return _moment("since", value, end=False) if value else None

    def validate_until(self, value: str) -> datetime | None:
        return _moment("until", value, end=True) if value else None

    def validate(self, attrs: dict) -> dict:
        if attrs.get("since") is None and attrs.get("range"):
            attrs["since"] = timezone.now() - RANGES[attrs["range"]]
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["until must come after since."]})
        return attrs

    def log_filter(self) -> queries.LogFilter:
        """The validated parameters as a filter."""
        data = self.validated_data
        return queries.LogFilter(q=data.get("q") or "", node=data.get("node") or "",
                                 min_level=data.get("level"), since=data.get("since"),
                                 until=data.get("until"), after=data.get("after"))

    def wants_text(self) -> bool:
        """Whether the caller asked for the download."""
        return self.validated_data.get("format") == TEXT or self.validated_data["download"]


def line_out(line: object) -> dict:
    """One line in the API's shape."""
    return {"cursor": line.id, "time": queries.iso(line.time), "node": line.node,
            "level": Level(line.level).label, "message": line.message}


def download(request: Request, lines: QuerySet, task_id: object) -> StreamingHttpResponse:
    """The lines (the newest 100,000 at most) as a streamed text attachment."""
    kept, truncated = queries.newest_in_time_order(lines, DOWNLOAD_MAX_LINES)
    header = (f"[only the newest {DOWNLOAD_MAX_LINES} matching lines; narrow the filters or "
              "the time range for older ones]\n") if truncated else ""
    served_by_asgi = isinstance(request._request, ASGIRequest)
    chunks = (queries.text_chunks_async if served_by_asgi else queries.text_chunks)(kept, header)
    response = StreamingHttpResponse(chunks, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="task-{task_id}.log"'
    return response


_LINES = inline_serializer("LogLine", {
    "cursor": serializers.IntegerField(), "time": serializers.DateTimeField(),
    "node": serializers.CharField(), "level": serializers.ChoiceField(choices=Level.names),
    "message": serializers.CharField()}, many=True)


LOG_SCHEMA = extend_schema(
    parameters=[
        OpenApiParameter("q", OpenApiTypes.STR, description="Substring of the message, "
                         "case-insensitive."),
        OpenApiParameter("node", OpenApiTypes.STR, description="Only this node's lines."),
        OpenApiParameter("level", OpenApiTypes.STR, enum=Level.names,
                         description="Minimum level: WARNING gives WARNING, ERROR, CRITICAL."),
        OpenApiParameter("since", OpenApiTypes.STR, description="ISO datetime, inclusive "
                         "(UTC without an offset)."),
        OpenApiParameter("until", OpenApiTypes.STR, description="ISO datetime, exclusive."),
        OpenApiParameter("range", OpenApiTypes.STR, enum=list(RANGES),
                         description="Time before now (recent = 15 minutes); since wins."),
        OpenApiParameter("after", OpenApiTypes.INT, description="Tail: lines after this "
                         "cursor (next_after of the previous answer)."),
        OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many "
                         "(1–1000, default 200)."),
        OpenApiParameter("format", OpenApiTypes.STR, enum=["json", TEXT],
                         description="text: download the matching lines as a file."),
        OpenApiParameter("download", OpenApiTypes.BOOL, description="Same as format=text."),
    ],
    responses={200: inline_serializer("TaskLog", {
        "results": _LINES, "next_after": serializers.IntegerField()}),
        (200, "text/plain"): OpenApiTypes.STR},
)


class LogView(APIView):
    """The logs of one owner (a task, a service): a subclass names the owner's `resource` (its
    role permission, its 404) and says whether the owner is the caller's tenant's."""

    resource = ""
    permission_classes = [RoleAllows]
    content_negotiation_class = FormatParamNegotiation

    def owner_exists(self, tenant_id: object, pk: str) -> bool:
        """The owner whose logs these are is the caller's tenant's."""
        raise NotImplementedError

    @LOG_SCHEMA
    def get(self, request: Request, pk: str) -> Response | StreamingHttpResponse:
        tenant_id = tenant_access(request).tenant_id
        if not self.owner_exists(tenant_id, pk):
            raise NotFound(f"{self.resource.capitalize()} not found.")
        query = LogQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.log_filter()
        if query.wants_text():
            return download(request, queries.matching(tenant_id, pk, wanted), pk)
        found = queries.page(tenant_id, pk, wanted, query.validated_data["limit"])
        return Response({"results": [line_out(line) for line in found.lines],
                         "next_after": found.next_after})


class TaskLogView(LogView):
    """Every member may read the logs of the tenant's tasks (resource "task", view)."""

    resource = "task"

    def owner_exists(self, tenant_id: object, pk: str) -> bool:
        """The task whose logs these are is the caller's tenant's."""
        return tasks.task_exists(tenant_id, pk)
