"""HTTP for billing: the compute catalogue, the wallet, prepaid hours and usage meters."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import RoleAllows, tenant_access
from billing import api as billing_api
from billing import wallet
from billing.models import ComputeSpec, Meter, PrepaidBalance, Wallet
from core.errors import InsufficientFunds
from core.pagination import CursorPagination, OnePage
from core.query_params import choice_param, text_param, uuid_param
from core.request_body import valid


class ComputeSpecOut(serializers.ModelSerializer):
    class Meta:
        model = ComputeSpec
        fields = ["id", "name", "kind", "gpu_model", "gpu_count", "cpu_cores", "memory_gib",
                  "price_per_hour", "currency"]


class ComputeSpecListView(generics.ListAPIView):
    """Active specs, cheapest first within each kind (the catalogue is small: one page)."""

    resource = "spec"
    permission_classes = [RoleAllows]
    serializer_class = ComputeSpecOut
    queryset = ComputeSpec.objects.filter(active=True)
    pagination_class = OnePage  # the catalogue is short: it takes no limit or cursor


class PrepaidOut(serializers.ModelSerializer):
    spec = serializers.CharField(source="spec_name")
    hours = serializers.SerializerMethodField()

    class Meta:
        model = PrepaidBalance
        fields = ["spec_id", "spec", "seconds", "hours", "value"]

    def get_hours(self, balance: PrepaidBalance) -> float:
        return round(balance.seconds / 3600, 4)


class WalletOut(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.IntegerField()
    frozen = serializers.IntegerField()
    available = serializers.IntegerField()
    prepaid_fallback_to_postpaid = serializers.BooleanField()
    prepaid = serializers.SerializerMethodField()

    def get_prepaid(self, w: Wallet) -> list[dict]:
        balances = (PrepaidBalance.objects.for_tenant(w.tenant_id).filter(seconds__gt=0)
                    .order_by("spec_name"))
        return PrepaidOut(balances, many=True).data


class WalletPatch(serializers.Serializer):
    prepaid_fallback_to_postpaid = serializers.BooleanField()


class WalletView(APIView):
    """The tenant's money in minor units: balance = frozen + available."""

    resource = "wallet"
    permission_classes = [RoleAllows]

    @extend_schema(responses={200: WalletOut})
    def get(self, request: Request) -> Response:
        return Response(WalletOut(wallet.view(tenant_access(request).tenant_id)).data)

    @extend_schema(request=WalletPatch, responses={200: WalletOut})
    def patch(self, request: Request) -> Response:
        data = valid(WalletPatch, request)
        updated = wallet.set_prepaid_fallback(tenant_access(request).tenant_id,
                                              data["prepaid_fallback_to_postpaid"])
        return Response(WalletOut(updated).data)


class PrepaidIn(serializers.Serializer):
    spec = serializers.CharField()
    hours = serializers.IntegerField(min_value=1, max_value=100_000)


class PrepaidView(generics.ListAPIView):
    """Prepaid hours per spec; POST buys hours at the spec's current price (402 if short)."""

    resource = "wallet"
    action_names = {"POST": "topup"}
    permission_classes = [RoleAllows]
    serializer_class = PrepaidOut
    pagination_class = OnePage  # a balance per spec at most
    refuses = {"POST": (InsufficientFunds,)}

    def get_queryset(self):  # noqa: ANN201
        return (PrepaidBalance.objects.for_tenant(tenant_access(self.request).tenant_id)
                .order_by("spec_name"))

    @extend_schema(request=PrepaidIn, responses={201: PrepaidOut})
    def post(self, request: Request) -> Response:
        data = valid(PrepaidIn, request)
        spec = billing_api.spec(data["spec"])
        balance = wallet.buy_prepaid_hours(tenant_access(request).tenant_id, spec,
                                           data["hours"])
        return Response(PrepaidOut(balance).data, status=status.HTTP_201_CREATED)


class MeterOut(serializers.ModelSerializer):
    spec = serializers.CharField(source="spec_name")

    class Meta:
        model = Meter
        fields = ["id", "resource_type", "resource_id", "project_id", "spec", "spec_id",
                  "price_per_hour", "currency", "mode", "state", "started_at", "stopped_at",
                  "stop_reason", "settled_seconds", "prepaid_seconds", "charged",
                  "prepaid_value", "frozen"]


class MeterPagination(CursorPagination):
    ordering = ("-started_at", "-id")


@extend_schema_view(get=extend_schema(parameters=[
    OpenApiParameter("state", OpenApiTypes.STR, enum=[Meter.RUNNING, Meter.STOPPED]),
    OpenApiParameter("resource_type", OpenApiTypes.STR, description="task, service, ..."),
    OpenApiParameter("resource_id", OpenApiTypes.UUID)]))
class MeterListView(generics.ListAPIView):
    """Usage meters (one per resource run), newest first; filter by state, resource_type,
    resource_id."""

    resource = "usage"
    permission_classes = [RoleAllows]
    serializer_class = MeterOut
    pagination_class = MeterPagination

    def get_queryset(self):  # noqa: ANN201
        meters = Meter.objects.for_tenant(tenant_access(self.request).tenant_id)
        resource_id = uuid_param(self.request, "resource_id")
        wanted = {"state": choice_param(self.request, "state", (Meter.RUNNING, Meter.STOPPED)),
                  "resource_type": text_param(self.request, "resource_type", max_length=32),
                  "resource_id": None if resource_id is None else str(resource_id)}
        return meters.filter(**{name: value for name, value in wanted.items() if value})


class ComputeSpecPatch(serializers.ModelSerializer):
    class Meta:
        model = ComputeSpec
        fields = ["price_per_hour", "active", "gpu_model", "gpu_count", "cpu_cores",
                  "memory_gib"]


class IsPlatformStaff(RoleAllows):
    """Platform operators (User.is_staff) only."""

    def has_permission(self, request: Request, view: object) -> bool:
        return super().has_permission(request, view) and bool(request.user.is_staff)

    def has_object_permission(self, request: Request, view: object, obj: object) -> bool:
        return bool(request.user.is_staff)


class ComputeSpecDetailView(generics.RetrieveUpdateAPIView):
    """One spec; platform staff change its price or retire it (running usage keeps the price
    in force at its start)."""

    resource = "spec"
    serializer_class = ComputeSpecOut
    queryset = ComputeSpec.objects.all()
    http_method_names = ["get", "patch", "head", "options"]

    def get_permissions(self):  # noqa: ANN201
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [RoleAllows()]
        return [IsPlatformStaff()]

    @extend_schema(request=ComputeSpecPatch, responses={200: ComputeSpecOut})
    def patch(self, request: Request, pk: str) -> Response:
        spec = self.get_object()
        data = valid(ComputeSpecPatch, request, instance=spec, partial=True)
        for name, value in data.items():
            setattr(spec, name, value)
        spec.save(update_fields=list(data))
        return Response(ComputeSpecOut(spec).data)
