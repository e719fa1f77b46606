"""HTTP for finance reports: usage, the ledger and monthly statements, as JSON or `?format=csv`.

Tenant finance (owner, admin, finance: resource "usage") sees its own tenant. Platform staff
(User.is_staff) may add `?tenant=<id>` to look at one tenant, or `?tenant=all` to look across
tenants (usage and ledger; `group_by=tenant` splits usage by tenant). A non-staff caller naming
another tenant gets 404, as for any object of another tenant; `group_by=tenant` is 403 for
them (a valid grouping their role may not use).

Query dates (`from`, `to`) are ISO dates or datetimes, UTC unless they carry an offset. The
period is `[from, to)`; a `to` given as a date includes that whole day.
"""

import re
import uuid
from datetime import datetime

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import IsTenantMember, RoleAllows, tenant, tenant_access
from billing import reports
from billing.models import LedgerEntry
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.pagination import CursorPagination
from core.query_params import (
    MOMENT_HELP,
    FormatParamNegotiation,
    format_param,
    moment_param,
    text_param,
)

CSV = "csv"
ALL_TENANTS = "all"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def wants_csv(request: Request) -> bool:
    """Whether the caller asked for `?format=csv`."""
    return format_param(request) == CSV


def csv_response(body: str, filename: str) -> HttpResponse:
    """A CSV attachment."""
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class FinanceOrStaff(RoleAllows):
    """The role table allows "usage" in the caller's tenant, or the caller is platform staff."""

    def has_permission(self, request: Request, view: object) -> bool:
        if not IsTenantMember.has_permission(self, request, view):
            return False
        return is_staff(request) or self._allowed(request, view)


def is_staff(request: Request) -> bool:
    """Platform operator (User.is_staff)."""
    return bool(getattr(request.user, "is_staff", False))


def tenant_scope(request: Request, *, allow_all: bool = True) -> list[uuid.UUID] | None:
    """The tenants a request looks at: its own; staff may name one (`?tenant=`) or `all` (None)."""
    own = tenant_access(request).tenant_id
    asked = request.query_params.get("tenant", "").strip()
    if not asked:
        return [own]
    if not is_staff(request):
        if asked == str(own):
            return [own]
        raise NotFound("Tenant not found.")
    if asked == ALL_TENANTS:
        if not allow_all:
            raise ValidationFailed("A statement is of one tenant: name it with ?tenant=<id>.",
                                   fields={"tenant": ["Name one tenant."]})
        return None
    try:
        tenant_id = uuid.UUID(asked)
    except ValueError:
        raise ValidationFailed("tenant must be a tenant id or 'all'.",
                               fields={"tenant": ["Not a tenant id."]}) from None
    if tenant(tenant_id) is None:
        raise NotFound("Tenant not found.")
    return [tenant_id]


def period(request: Request) -> tuple[datetime | None, datetime | None]:
    """`from` and `to` as a half-open UTC interval (either may be open)."""
    start = moment_param(request, "from")
    end = moment_param(request, "to", end=True)
    if start is not None and end is not None and end <= start:
        raise ValidationFailed("to must come after from.", fields={"to": ["Not after from."]})
    return start, end


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _stamp() -> str:
    return timezone.now().date().isoformat()


_PERIOD_PARAMS = [
    OpenApiParameter("from", OpenApiTypes.STR, description=f"{MOMENT_HELP} UTC without an "
                     "offset."),
    OpenApiParameter("to", OpenApiTypes.STR, description="Exclusive; a date includes its day "
                     "(so 9999-12-31 is out of range)."),
    OpenApiParameter("tenant", OpenApiTypes.STR, description="Staff only: a tenant id or all."),
    OpenApiParameter("format", OpenApiTypes.STR, description="csv for a CSV attachment."),
]


class UsageRowOut(serializers.Serializer):
    key = serializers.CharField(allow_null=True, help_text="The group: a resource, project, "
                                "spec, day or month.")
    seconds = serializers.FloatField()
    amount = serializers.IntegerField(help_text="Minor units.")
    postpaid_amount = serializers.IntegerField()
    prepaid_seconds = serializers.FloatField()


class UsageOut(serializers.Serializer):
    results = UsageRowOut(many=True)
    total = serializers.IntegerField(help_text="Minor units.")
    seconds = serializers.FloatField()
    currency = serializers.CharField()
    group_by = serializers.CharField()
    from_ = serializers.DateTimeField(allow_null=True)
    to = serializers.DateTimeField(allow_null=True)

    def get_fields(self) -> dict:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # a Python keyword, the answer's name
        return fields


class UsageView(APIView):
    """Usage of a period grouped by resource, project, spec, day or month (staff: tenant)."""

    resource = "usage"
    permission_classes = [FinanceOrStaff]
    refuses = (NotFound,)  # ?tenant= (staff) names no tenant
    content_negotiation_class = FormatParamNegotiation

    @extend_schema(parameters=[OpenApiParameter(
        "group_by", OpenApiTypes.STR, enum=list(reports.GROUPS),
        description="Default resource; tenant is for platform staff."), *_PERIOD_PARAMS],
        responses={200: UsageOut})
    def get(self, request: Request) -> Response | HttpResponse:
        group_by = request.query_params.get("group_by", "resource")
        if group_by == "tenant" and not is_staff(request):
            raise PermissionDenied("Only platform staff can group usage by tenant.")
        scope = tenant_scope(request)
        start, end = period(request)
        report = reports.usage(scope, group_by, start, end)
        if wants_csv(request):
            return csv_response(reports.usage_csv(report), f"usage-{group_by}-{_stamp()}.csv")
        return Response({
            "results": [{"key": row.key, "seconds": row.seconds, "amount": row.amount,
                         "postpaid_amount": row.postpaid_amount,
                         "prepaid_seconds": row.prepaid_seconds} for row in report.rows],
            "total": report.total, "seconds": report.seconds, "currency": report.currency,
            "group_by": group_by, "from": _iso(start), "to": _iso(end)})


class PostingOut(serializers.Serializer):
    account = serializers.CharField()
    amount = serializers.IntegerField()


class LedgerEntryOut(serializers.ModelSerializer):
    postings = PostingOut(many=True)

    class Meta:
        model = LedgerEntry
        fields = ["position", "tenant_id", "event_type", "meter_id", "memo", "recorded_at",
                  "postings"]


class LedgerPagination(CursorPagination):
    ordering = ("-position",)


class LedgerView(generics.ListAPIView):
    """Ledger entries with their postings, newest first; filter by from, to, account,
    event_type."""

    resource = "usage"
    permission_classes = [FinanceOrStaff]
    refuses = (NotFound,)  # ?tenant= (staff) names no tenant
    content_negotiation_class = FormatParamNegotiation
    serializer_class = LedgerEntryOut
    pagination_class = LedgerPagination

    def get_queryset(self):  # noqa: ANN201
        start, end = period(self.request)
        return reports.ledger_entries(tenant_scope(self.request), start=start, end=end,
                                      account=text_param(self.request, "account"),
                                      event_type=text_param(self.request, "event_type"))

    @extend_schema(parameters=[OpenApiParameter("account", OpenApiTypes.STR),
                               OpenApiParameter("event_type", OpenApiTypes.STR),
                               OpenApiParameter("limit", OpenApiTypes.INT), *_PERIOD_PARAMS])
    def get(self, request: Request, *args: object, **kwargs: object
            ) -> Response | StreamingHttpResponse:
        if wants_csv(request):
            response = StreamingHttpResponse(reports.ledger_csv(self.get_queryset()),
                                             content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="ledger-{_stamp()}.csv"'
            return response
        return self.list(request, *args, **kwargs)


def parse_month(raw: str | None) -> tuple[int, int]:
    """`YYYY-MM` as (year, month); 400 on `month` otherwise."""
    found = _MONTH.match((raw or "").strip())
    year, month = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    # the statement runs to the next month's start, which must exist: 9999-12 has none
    if not (1 <= month <= 12 and year >= 1 and (year, month) < (9999, 12)):
        raise ValidationFailed("month is required as YYYY-MM, for example 2026-03, up to "
                               "9999-11.", fields={"month": ["Required as YYYY-MM."]})
    return year, month


class StatementView(APIView):
    """A tenant's monthly statement: opening balance, movements, closing balance, the check."""

    resource = "usage"
    permission_classes = [FinanceOrStaff]
    refuses = (NotFound,)  # ?tenant= (staff) names no tenant
    content_negotiation_class = FormatParamNegotiation

    @extend_schema(parameters=[OpenApiParameter("month", OpenApiTypes.STR, required=True,
                                                description="YYYY-MM (UTC)."),
                               OpenApiParameter("tenant", OpenApiTypes.STR,
                                                description="Staff only: a tenant id."),
                               OpenApiParameter("format", OpenApiTypes.STR)],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response | HttpResponse:
        year, month = parse_month(request.query_params.get("month"))
        (tenant_id,) = tenant_scope(request, allow_all=False)
        result = reports.statement(tenant_id, year, month)
        if wants_csv(request):
            return csv_response(reports.statement_csv(result),
                                f"statement-{result.label}-{tenant_id}.csv")
        return Response({"tenant": str(result.tenant_id), "month": result.label,
                         "currency": result.currency, **dict(result.lines()),
                         "reconciles": result.reconciles})
