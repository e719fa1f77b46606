"""HTTP for trained models: GET /api/v1/models/ (optionally one project's) and one model."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, serializers

from accounts.api import RoleAllows, tenant_access
from core.query_params import uuid_param
from modelregistry import formats
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

    class Meta:
        model = TrainedModel
        fields = ["id", "task", "project", "version", "scenario", "algorithm", "labels",
                  "metrics", "input_size", "formats", "created_at"]

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


@extend_schema_view(get=extend_schema(parameters=[OpenApiParameter(
    "project", OpenApiTypes.UUID, description="Only this project's models.")]))
class ModelListView(ModelViews, generics.ListAPIView):
    pass


class ModelDetailView(ModelViews, generics.RetrieveAPIView):
    pass
