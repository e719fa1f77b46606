"""HTTP for prediction services: publish, list, detail, stop, update, key, monitoring, events,
logs, and the prediction route (tenant token or the service's key).

The web process never loads a model: a prediction is checked (size, that it is an image), queued
for the service's instances (serving.transport) and answered when an instance replies. When more
requests wait than the instances can take (SERVING_MAX_QUEUE per instance) the answer is 429 with
Retry-After at once, never a timeout.
"""

import binascii
import io
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from PIL import Image, UnidentifiedImageError
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import (
    BearerTokenAuthentication,
    RoleAllows,
    SessionAuthentication,
    can,
    tenant_access,
)
from core import leases
from core.body_limits import TakesUploads
from core.errors import (
    InsufficientFunds,
    NotFound,
    PayloadTooLarge,
    ServiceEnded,
    ServiceNotRunning,
    Throttled,
    Unavailable,
    ValidationFailed,
)
from core.query_params import choice_param, int_param
from core.request_body import refuse_unknown, valid
from eventlog.store import read_log
from serving import commands, gateway, monitoring
from serving.instance import lease_key as instance_lease_key
from serving.keys import ServiceKeyAccess, ServiceKeyAuthentication
from serving.models import STATES, Service, ServiceInstance, ServiceUpdate
from serving.pixels import too_many_pixels
from serving.transport import encode_image, transport
from tasklogs.api import LOG_SCHEMA, LogView


class ServiceIn(serializers.Serializer):
    model = serializers.UUIDField()
    name = serializers.CharField(min_length=1, max_length=100)
    spec = serializers.CharField(max_length=64)
    billing_mode = serializers.ChoiceField(choices=("postpaid", "prepaid"), required=False)
    max_runtime_s = serializers.IntegerField(required=False)
    instances = serializers.IntegerField(required=False)


class ServiceUpdateIn(serializers.Serializer):
    model = serializers.UUIDField()


class ServiceOut(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id")
    model = serializers.UUIDField(source="model_id")
    spec = serializers.UUIDField(source="spec_id")
    instances = serializers.IntegerField(source="instance_count")
    stops_at = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = ["id", "name", "state", "project", "model", "spec", "spec_name",
                  "billing_mode", "max_runtime_s", "instances", "key_prefix", "stop_reason",
                  "failure", "created_at", "running_at", "stopped_at", "stops_at"]

    def get_stops_at(self, service: Service) -> str | None:
        """When the maximum running time ends (while it has not stopped)."""
        if service.stopped_at is not None:
            return None
        return serializers.DateTimeField().to_representation(
            service.created_at + timedelta(seconds=service.max_runtime_s))

    def get_failure(self, service: Service) -> dict[str, str] | None:
        """Why it failed, when it did."""
        if not service.failure_code:
            return None
        return {"code": service.failure_code, "message": service.failure_message}


class InstanceOut(serializers.ModelSerializer):
    model = serializers.UUIDField(source="model_id")

    class Meta:
        model = ServiceInstance
        fields = ["number", "state", "node", "model", "started_at", "ready_at", "exited_at",
                  "exit_reason"]


class UpdateOut(serializers.ModelSerializer):
    from_model = serializers.UUIDField(source="from_model_id")
    to_model = serializers.UUIDField(source="to_model_id")

    class Meta:
        model = ServiceUpdate
        fields = ["id", "from_model", "to_model", "state", "started_at", "finished_at"]


def detail(service: Service) -> dict[str, Any]:
    """A service with its instances and update records."""
    body = ServiceOut(service).data
    instances = ServiceInstance.objects.for_tenant(service.tenant_id).filter(
        service_id=service.id).order_by("number")
    updates = ServiceUpdate.objects.for_tenant(service.tenant_id).filter(
        service_id=service.id).order_by("started_at")
    body["instance_states"] = InstanceOut(instances, many=True).data
    body["updates"] = UpdateOut(updates, many=True).data
    return body


class ServiceViews:
    resource = "service"
    permission_classes = [RoleAllows]
    serializer_class = ServiceOut

    def get_queryset(self) -> QuerySet:
        """The caller's tenant's services (`?state=` narrows them)."""
        services = Service.objects.for_tenant(tenant_access(self.request).tenant_id)
        state = choice_param(self.request, "state", STATES)
        if state is not None:
            services = services.filter(state=state)
        return services.order_by("-created_at", "id")


@extend_schema_view(get=extend_schema(parameters=[
    OpenApiParameter("state", OpenApiTypes.STR, enum=list(STATES))]))
class ServiceListView(ServiceViews, generics.ListAPIView):
    """The tenant's services, newest first; POST publishes a model (402 if funds are short)."""

    refuses = {"POST": (InsufficientFunds,)}

    @extend_schema(request=ServiceIn, responses={201: ServiceOut})
    def post(self, request: Request) -> Response:
        """Publish; the answer carries the prediction key, shown this once."""
        data = valid(ServiceIn, request)
        data["model"] = str(data["model"])
        service, key = commands.create_service(tenant_access(request), data)
        return Response({**detail(service), "key": key}, status=status.HTTP_201_CREATED)


class ServiceDetailView(ServiceViews, generics.RetrieveAPIView):
    """A service with its instances and update records."""

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The service."""
        return Response(detail(self.get_object()))


class ServiceStopView(ServiceViews, generics.GenericAPIView):
    """Stop the service (409 once stopping or ended)."""

    action_names = {"POST": "update"}
    refuses = (ServiceEnded,)

    @extend_schema(request=None, responses={202: ServiceOut})
    def post(self, request: Request, pk: str) -> Response:
        """Ask the instances to leave; stopped once the last has."""
        service = self.get_object()
        access = tenant_access(request)
        if not commands.request_stop(access.tenant_id, service.id, "user", access.actor):
            raise ServiceEnded(f"The service is {service.state}; only a deploying, running or "
                               "updating service can be stopped.")
        service.refresh_from_db()
        return Response(detail(service), status=status.HTTP_202_ACCEPTED)


class ServiceModelView(ServiceViews, generics.GenericAPIView):
    """Switch a running service to another model version, without dropping requests."""

    action_names = {"POST": "update"}
    refuses = (ServiceNotRunning,)

    @extend_schema(request=ServiceUpdateIn, responses={202: ServiceOut})
    def post(self, request: Request, pk: str) -> Response:
        """Start the update; instances switch one by one and the record completes."""
        service = self.get_object()
        data = valid(ServiceUpdateIn, request)
        updated = commands.update_model(tenant_access(request), service.id, data["model"])
        return Response(detail(updated), status=status.HTTP_202_ACCEPTED)


class KeyOut(serializers.Serializer):
    key = serializers.CharField(help_text="The prediction key, shown this once.")
    key_prefix = serializers.CharField(help_text="Its first characters, shown from now on.")


class ServiceKeyView(ServiceViews, generics.GenericAPIView):
    """A new prediction key; the previous one stops working."""

    action_names = {"POST": "update"}
    refuses = (ServiceEnded,)

    @extend_schema(request=None, responses={201: KeyOut})
    def post(self, request: Request, pk: str) -> Response:
        """The new key, shown this once."""
        service = self.get_object()
        key = commands.reissue_key(tenant_access(request), service.id)
        return Response({"key": key, "key_prefix": key[:len(commands.KEY_PREFIX) + 6]},
                        status=status.HTTP_201_CREATED)


class ServiceMonitoringView(ServiceViews, generics.GenericAPIView):
    """Requests, errors, throttled and latency percentiles per minute (`?minutes=60`)."""

    @extend_schema(parameters=[OpenApiParameter("minutes", OpenApiTypes.INT,
                                                description="1 to 10080 (default 60).")],
                   responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The last minutes, oldest first, with totals."""
        service = self.get_object()
        minutes = int_param(request, "minutes", low=1, high=7 * 24 * 60, default=60)
        monitoring.flush()
        rows = monitoring.minutes(service.tenant_id, service.id, monitoring.window(minutes))
        totals = {name: sum(r[name] for r in rows) for name in ("requests", "errors",
                                                                 "throttled")}
        return Response({"minutes": rows, "totals": totals})


class ServiceEventsView(ServiceViews, generics.GenericAPIView):
    """The service's own events (`?after=&limit=`), oldest first."""

    @extend_schema(parameters=[
        OpenApiParameter("after", OpenApiTypes.INT, description="Position to read after."),
        OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many (1–1000).")],
        responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """One page of the service stream."""
        service = self.get_object()
        after = int_param(request, "after", default=0)
        limit = int_param(request, "limit", low=1, high=1000, default=100)
        events = read_log(after=after, limit=limit, tenant_id=service.tenant_id,
                          stream_type="service", stream_id=str(service.id))
        return Response({"results": [event.as_public() for event in events],
                         "next_after": events[-1].position if events else after})


class ServiceLogView(LogView):
    """The logs of the service's instances (same filters as task logs)."""

    resource = "service"

    def owner_exists(self, tenant_id: object, pk: str) -> bool:
        """The service is the caller's tenant's."""
        return Service.objects.for_tenant(tenant_id).filter(id=pk).exists()

    @LOG_SCHEMA
    def get(self, request: Request, pk: str) -> Response | StreamingHttpResponse:
        """The lines, filtered; `format=text` downloads them."""
        return super().get(request, pk)


# --- predictions ---------------------------------------------------------------------------


class MayPredict(BasePermission):
    """Members who may view the service, or the service's own key."""

    def has_permission(self, request: Request, view: object) -> bool:
        access = request.auth
        if isinstance(access, ServiceKeyAccess):
            return True
        return access is not None and can(access.role, "service", "view")


def _image(request: Request) -> bytes:
    """The uploaded image (multipart `image`, or JSON base64 `image`); 400/413 otherwise."""
    upload = request.FILES.get("image")
    if upload is not None:
        if upload.size > settings.SERVING_MAX_IMAGE_BYTES:
            raise PayloadTooLarge(f"The image is over {settings.SERVING_MAX_IMAGE_BYTES} bytes.")
        content = upload.read()
    else:
        encoded = request.data.get("image") if hasattr(request.data, "get") else None
        if not isinstance(encoded, str) or not encoded:
            raise ValidationFailed("Send the image as multipart `image` or JSON base64 `image`.",
                                   fields={"image": ["This field is required."]})
        try:
            content = binascii.a2b_base64(encoded.split(",", 1)[-1])
        except binascii.Error:
            raise ValidationFailed("The image is not valid base64.",
                                   fields={"image": ["Not base64."]}) from None
        if len(content) > settings.SERVING_MAX_IMAGE_BYTES:
            raise PayloadTooLarge(f"The image is over {settings.SERVING_MAX_IMAGE_BYTES} bytes.")
    too_many = too_many_pixels(content)
    if too_many is not None:
        raise PayloadTooLarge(too_many, fields={"image": [too_many]})
    try:
        with Image.open(io.BytesIO(content)) as probe:  # header only: instances decode
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise ValidationFailed(f"The file is not a readable image: {exc}",
                               fields={"image": ["Not a readable image."]}) from None
    return content


def _number(request: Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.data.get(name, request.query_params.get(name)) if hasattr(
        request.data, "get") else request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} must be a number.",
                               fields={name: ["Not a number."]}) from None
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be {low:g} to {high:g}.",
                               fields={name: ["Out of range."]})
    return value


@dataclass(frozen=True)
class Target:
    """The service a prediction is for: what the route checks and monitors."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    state: str
    instance_count: int
    alive: bool = True  # an instance's heartbeat is fresh


class PredictJsonIn(serializers.Serializer):
    image = serializers.CharField(help_text="The image file's bytes in base64 (a data: URL's "
                                            "prefix is allowed).")
    min_score = serializers.FloatField(min_value=0, max_value=1, required=False, default=0.0,
                                       help_text="Leave out predictions scored below this.")
    top_k = serializers.IntegerField(min_value=1, max_value=100, required=False, default=5,
                                     help_text="Classification: at most this many labels.")


class PredictUploadIn(PredictJsonIn):
    image = serializers.ImageField(help_text="The image file (JPEG, PNG, ...).")


class MaskOut(serializers.Serializer):
    size = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2,
                                 help_text="[height, width] of the image.")
    counts = serializers.CharField(help_text="COCO run-length encoding.")


class PredictionOut(serializers.Serializer):
    label = serializers.CharField()
    score = serializers.FloatField()
    bbox = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4,
                                 required=False, help_text="Detection and segmentation: "
                                 "[x, y, width, height] in pixels of the image.")
    mask = MaskOut(required=False, help_text="Segmentation: the object's mask.")


class PredictOut(serializers.Serializer):
    predictions = PredictionOut(many=True, help_text="Highest score first.")
    model = serializers.UUIDField(help_text="The trained model that answered.")


class ServicePredictView(TakesUploads, generics.GenericAPIView):
    """Predict one image: `{"predictions": [{"label", "score", "bbox"?, "mask"?}]}`, highest
    score first; `min_score` filters by confidence, `top_k` caps classification labels.

    The route is served by `serving.gateway` (asynchronous: no thread waits while an instance
    works); this class holds what DRF does well there: authentication, permissions, the error
    shape and the schema. `accept` runs them in the gateway's thread pool."""

    authentication_classes = [ServiceKeyAuthentication, BearerTokenAuthentication,
                              SessionAuthentication]
    permission_classes = [MayPredict]
    throttle_classes: list = []  # overload is measured by the queue, answered 429 below
    refuses = (ServiceNotRunning,)
    served_by_gateway = True  # config.asgi hands Bearer predictions to the gateway directly

    @staticmethod
    def upload_limit() -> int:
        """A multipart image's limit (the route's body limit adds the form's framing)."""
        return settings.SERVING_MAX_IMAGE_BYTES

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        """The gateway's view, carrying this class (drf-spectacular documents it from `cls`)."""
        return gateway.view(cls, initkwargs)

    @extend_schema(request={"multipart/form-data": PredictUploadIn,
                            "application/json": PredictJsonIn},
                   responses={200: PredictOut})
    def post(self, request: Request, pk: str) -> Any:
        """Queue the image for an instance and answer with its predictions."""
        return async_to_sync(gateway.answer)(type(self), request._request, pk)

    def accept(self, request: HttpRequest, pk: str, request_id: str
               ) -> tuple[Target | None, HttpResponse | None]:
        """Authenticate, find the service, check the image and queue it for an instance: the
        service (None when the caller may not see it), and the error answer if it was not
        queued. Runs what `dispatch` would, up to the wait."""
        self.args, self.kwargs = (), {"pk": pk}
        drf_request = self.initialize_request(request, pk=pk)
        self.request, self.headers = drf_request, self.default_response_headers
        service = None
        try:
            self.initial(drf_request, pk=pk)
            service = self._service(drf_request, pk)
            self._queue(drf_request, service, request_id)
            return service, None
        except Exception as exc:  # handle_exception re-raises what it cannot answer
            response = self.handle_exception(exc)
        return service, self.finalize_response(drf_request, response, pk=pk).render()

    def _service(self, request: Request, pk: str) -> Target:
        access = request.auth
        if isinstance(access, ServiceKeyAccess) and str(access.service_id) != str(pk):
            raise NotFound("Service not found.")
        # the columns a prediction needs, and whether an instance's heartbeat is fresh: the
        # route's hottest query, no model instance
        found = Service.objects.for_tenant(access.tenant_id).filter(id=pk).annotate(
            alive=leases.fresh(instance_lease_key(pk), settings.SERVING_INSTANCE_TIMEOUT_S)
        ).values_list("id", "tenant_id", "state", "instance_count", "alive")[:1]
        if not found:
            raise NotFound("Service not found.")
        return Target(*found[0])

    def _queue(self, request: Request, service: Target, request_id: str) -> None:
        if service.state not in commands.SERVING:
            raise ServiceNotRunning(f"The service is {service.state}; it answers predictions "
                                    "while running.")
        if not service.alive:  # its instances died: no waiting SERVING_REQUEST_TIMEOUT_S
            raise Unavailable("No instance of the service is alive; it is being restarted. "
                              "Retry shortly.", headers={"Retry-After": "5"})
        refuse_unknown(request, PredictJsonIn().fields)
        content = _image(request)
        body = {"image": encode_image(content),
                "min_score": _number(request, "min_score", 0.0, 0.0, 1.0),
                "top_k": int(_number(request, "top_k", 5, 1, 100))}
        limit = settings.SERVING_MAX_QUEUE * max(1, service.instance_count)
        if not transport().submit(str(service.id), request_id, body, limit):
            raise Throttled("The service is busy; retry shortly.", headers={"Retry-After": "1"})
