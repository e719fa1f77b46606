"""HTTP for trained models: GET /api/v1/models/ (optionally one project's) and one model."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers

from accounts.api import RoleAllows, tenant_access
from core.query_params import uuid_param
from modelregistry.models import TrainedModel


class ModelOut(serializers.ModelSerializer):
    task = serializers.UUIDField(source="task_id")
    project = serializers.UUIDField(source="project_id")
    version = serializers.SerializerMethodField()
    algorithm = serializers.CharField(source="model_name")

    class Meta:
        model = TrainedModel
        fields = ["id", "task", "project", "version", "scenario", "algorithm", "labels",
                  "metrics", "input_size", "created_at"]

    def get_version(self, model: TrainedModel) -> str:
        return f"V{model.version:03d}"


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
