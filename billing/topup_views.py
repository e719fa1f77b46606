"""HTTP for top-ups: the tenant's Stripe Checkout top-ups, and the webhook Stripe calls."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import RoleAllows, tenant_access
from billing import topups
from billing.models import Topup
from core.errors import (
    IdempotencyKeyReused,
    InvalidSignature,
    PaymentProviderUnavailable,
    PaymentsNotConfigured,
    TopupNotPaidYet,
)
from core.request_body import refuse_unknown


class TopupOut(serializers.ModelSerializer):
    class Meta:
        model = Topup
        fields = ["id", "amount", "currency", "state", "checkout_url", "session_id", "refunded",
                  "failure_reason", "created_at", "updated_at"]


class TopupIn(serializers.Serializer):
    """For the schema only: the command validates the amount itself (integers, no rounding)."""

    amount = serializers.IntegerField(help_text="Minor units (cents) of the wallet currency.")


class TopupListView(generics.ListAPIView):
    """The tenant's top-ups, newest first; POST starts one and answers the page to pay it on."""

    resource = "wallet"
    action_names = {"POST": "topup"}
    permission_classes = [RoleAllows]
    serializer_class = TopupOut
    refuses = {"POST": (PaymentsNotConfigured, PaymentProviderUnavailable, IdempotencyKeyReused)}

    def get_queryset(self):  # noqa: ANN201
        return Topup.objects.for_tenant(tenant_access(self.request).tenant_id)

    @extend_schema(
        request=TopupIn, responses={201: TopupOut},
        parameters=[OpenApiParameter(
            "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
            description="Retrying with the same key returns the same top-up, charged once.")])
    def post(self, request: Request) -> Response:
        refuse_unknown(request, TopupIn().fields)
        body = request.data if isinstance(request.data, dict) else {}
        topup = topups.create_topup(tenant_access(request).tenant_id, body.get("amount"),
                                    idempotency_key=request.headers.get("Idempotency-Key"))
        return Response(TopupOut(topup).data, status=status.HTTP_201_CREATED)


class StripeWebhookView(APIView):
    """Stripe's events; the Stripe-Signature header is the only credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Stripe delivers in bursts from a few addresses; the anonymous per-address budget would
    # turn its deliveries away. The signature check is cheap and refuses strangers.
    throttle_classes: list = []
    refuses = (InvalidSignature, PaymentsNotConfigured, TopupNotPaidYet)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: inline_serializer("StripeWebhookReceived", {
            "received": serializers.BooleanField(), "result": serializers.CharField()})},
        auth=[])
    def post(self, request: Request) -> Response:
        # The raw bytes: the signature covers them exactly, not a re-serialised parse.
        result = topups.handle_webhook(request.body, request.META.get("HTTP_STRIPE_SIGNATURE"))
        return Response({"received": True, "result": result})
