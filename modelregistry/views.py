"""HTTP for trained models: GET /api/v1/models/ (optionally one project's) and one model."""

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import RoleAllows, tenant_access
from core.body_limits import TakesUploads
from core.errors import Unavailable
from core.query_params import uuid_param
from core.request_body import valid
from modelregistry import checks, formats, imports
from modelregistry.models import TrainedModel

FORMATS_SCHEMA = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["available"], "properties": {
        "available": {"type": "boolean"}, "max_abs_diff": {"type": "number"},
        "opset": {"type": "integer"}, "fixed_input_size": {"type": "array",
                                                           "items": {"type": "integer"}},
        "unavailable": {"type": "string", "description": "Why the format is missing."}}}}


class ModelOut(serializers.ModelSerializer):
    task = serializers.UUIDField(source="task_id")
    project = serializers.UUIDField(source="project_id")
    version = serializers.SerializerMethodField()
    algorithm = serializers.CharField(source="model_name")
    formats = serializers.SerializerMethodField(
        help_text="Per format (artifact, onnx, torchscript): available, and either "
                  "max_abs_diff (largest difference from the eager model on sample inputs) or "
                  "the reason it could not be produced. Download with .../download/?format=.")

    origin = serializers.CharField(read_only=True, help_text=(
        "trained (by a task here) or imported (trained elsewhere; task is then the model's "
        "own id)."))

    class Meta:
        model = TrainedModel
        fields = ["id", "task", "project", "version", "scenario", "algorithm", "labels",
                  "metrics", "input_size", "formats", "origin", "created_at"]

    @extend_schema_field(FORMATS_SCHEMA)
    def get_formats(self, model: TrainedModel) -> dict:
        return public_formats(model.formats or {})

    def get_version(self, model: TrainedModel) -> str:
        return f"V{model.version:03d}"


def public_formats(stored: dict) -> dict:
    """The model's formats as the API shows them: no storage keys."""
    shown = {}
    for fmt in formats.FORMATS:
        entry = stored.get(fmt) or {"unavailable": "not exported"}
        shown[fmt] = {"available": "key" in entry,
                      **{k: v for k, v in entry.items() if k != "key"}}
    return shown


class ModelViews:
    resource = "model"
    permission_classes = [RoleAllows]
    serializer_class = ModelOut

    def get_queryset(self) -> QuerySet:
        models = TrainedModel.objects.for_tenant(tenant_access(self.request).tenant_id)
        project = uuid_param(self.request, "project")
        return models if project is None else models.filter(project_id=project)


class ModelImportIn(serializers.Serializer):
    project = serializers.UUIDField()
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    file = serializers.FileField(help_text=(
        "The platform's own model zip (as downloaded with format=artifact), or a PyTorch "
        "state dict (.pt, read weights-only) of a catalogue algorithm with `manifest`."))
    manifest = serializers.CharField(required=False, allow_blank=True, help_text=(
        'For a state dict: JSON {"scenario", "algorithm", "labels": [...], "input_size": '
        '[h, w], "build_options": {}}; the labels\' count must match the weights.'))


@extend_schema_view(get=extend_schema(parameters=[OpenApiParameter(
    "project", OpenApiTypes.UUID, description="Only this project's models.")]))
class ModelListView(TakesUploads, ModelViews, generics.ListAPIView):
    refuses = {"POST": (Unavailable,)}

    @staticmethod
    def upload_limit() -> int:
        return imports.MAX_UPLOAD_BYTES

    @extend_schema(request={"multipart/form-data": ModelImportIn}, responses={201: ModelOut},
                   description="Import a model trained elsewhere (lineage `imported`): checked "
                               "(weights only, the declared algorithm and label count must fit "
                               "the tensors), exported in every format, then evaluated and "
                               "published like a trained one. A bad file is a 400 naming the "
                               "problem and nothing is stored; an import still running after "
                               "the wait is a 503 with Retry-After (it then finishes alone).")
    def post(self, request: Request) -> Response:
        data = valid(ModelImportIn, request)
        model_id = imports.start(tenant_access(request), data, data["file"])
        row = TrainedModel.objects.for_tenant(tenant_access(request).tenant_id).get(id=model_id)
        return Response(ModelOut(row).data, status=status.HTTP_201_CREATED)


class ModelDetailView(ModelViews, generics.RetrieveAPIView):
    pass


class ModelCheckIn(serializers.Serializer):
    image = serializers.FileField(help_text="One image (JPEG, PNG...).")
    top_k = serializers.IntegerField(min_value=1, max_value=20, required=False, default=5)


class ModelCheckOut(serializers.Serializer):
    predictions = serializers.ListField(child=serializers.DictField(), help_text=(
        "Highest score first: {label, score} for a classifier; with bbox (and mask) for a "
        "detector or segmenter, as a service's predictions."))


class ModelCheckView(TakesUploads, generics.GenericAPIView):
    """A quick check of a model on one image: a short CPU job, no service, nothing billed."""

    resource = "model"
    permission_classes = [RoleAllows]
    refuses = {"POST": (Unavailable,)}

    @staticmethod
    def upload_limit() -> int:
        return settings.SERVING_MAX_IMAGE_BYTES

    @extend_schema(request={"multipart/form-data": ModelCheckIn}, responses={200: ModelCheckOut},
                   description="Predictions with confidences for one image, answered when the "
                               "CPU job is done (503 with Retry-After if it takes too long).")
    def post(self, request: Request, pk: str) -> Response:
        tenant_id = tenant_access(request).tenant_id
        checks.require_model(tenant_id, pk)  # another tenant's model: 404 whatever the body
        data = valid(ModelCheckIn, request)
        found = checks.start(tenant_id, pk, data["image"], data["top_k"])
        return Response({"predictions": found})
