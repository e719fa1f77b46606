"""HTTP for training tasks, their versions, metrics and templates (trained models are the
model registry's, modelregistry.views; a task's lineage is drawn by the `lineage` package,
above the apps it spans)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
from core.errors import (
    InsufficientFunds,
    TaskNotRestartable,
    TaskNotRunning,
    ValidationFailed,
)
from core.query_params import choice_param, uuid_param
from core.request_body import valid
from tasks import commands
from tasks.models import STATES, Task, TaskMetric, TaskTemplate


@extend_schema_field({"type": "string", "maxLength": 64, "nullable": True, "deprecated": True,
                      "description": "Deprecated: the former name of `algorithm`; both given "
                                     "and different is a 400."})
class _DeprecatedAlgorithm(serializers.CharField):
    pass


class TaskIn(serializers.Serializer):
    project = serializers.UUIDField(required=False)
    name = serializers.CharField(max_length=100, required=False)
    scenario = serializers.ChoiceField(choices=commands.SCENARIOS, required=False)
    algorithm = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True,
        help_text="The model architecture to train, one of the scenario's in the catalogue; "
                  "left out or empty: the scenario's default.")
    model = _DeprecatedAlgorithm(max_length=64, required=False, allow_null=True,
                                 allow_blank=True)
    train_dataset = serializers.UUIDField(required=False)
    test_dataset = serializers.UUIDField(required=False, allow_null=True)
    output_path = serializers.CharField(max_length=300, required=False, allow_blank=True)
    target_metric = serializers.FloatField(min_value=0.0, max_value=1.0, required=False,
                                           allow_null=True)
    max_duration_s = serializers.IntegerField(min_value=60, max_value=7 * 24 * 3600,
                                              required=False, allow_null=True)
    epochs = serializers.IntegerField(min_value=1, max_value=1000, required=False,
                                      allow_null=True)
    learning_rate = serializers.FloatField(min_value=1e-7, max_value=10.0, required=False,
                                           allow_null=True)
    batch_size = serializers.IntegerField(min_value=1, max_value=1024, required=False,
                                          allow_null=True)
    warmup_epochs = serializers.FloatField(min_value=0.0, max_value=100.0, required=False,
                                           allow_null=True)
    seed = serializers.IntegerField(
        min_value=0, max_value=2**32 - 1, required=False, allow_null=True,
        help_text="Seed of the train/validation split and of the training (default 0).")
    billing_mode = serializers.ChoiceField(choices=("postpaid", "prepaid"), required=False)
    spec = serializers.CharField(max_length=64, required=False)
    template = serializers.UUIDField(required=False, write_only=True)

    REQUIRED = ("project", "name", "scenario", "train_dataset", "billing_mode", "spec")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """`algorithm`, under the name the commands know it by (`model`)."""
        if "algorithm" in attrs:
            algorithm = attrs.pop("algorithm")
            if "model" in attrs and attrs["model"] != algorithm:
                why = "algorithm and model (its deprecated name) differ; send algorithm only."
                raise serializers.ValidationError({"algorithm": [why], "model": [why]})
            attrs["model"] = algorithm
        return attrs


@contextmanager
def _naming_algorithm(request: Request) -> Iterator[None]:
    """A refusal of the architecture names the field the client sent: `algorithm`, unless it
    sent the deprecated `model` (the commands know it as `model`)."""
    try:
        yield
    except ValidationFailed as refused:
        sent = request.data if hasattr(request.data, "keys") else {}
        if "algorithm" in sent and "model" not in sent and "model" in refused.fields:
            refused.fields["algorithm"] = refused.fields.pop("model")
        raise


def _with_template(access: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The request's fields over the template's parameters, and every required one present."""
    values: dict[str, Any] = {}
    if "template" in data:
        template = TaskTemplate.objects.for_tenant(access.tenant_id).filter(
            id=data["template"]).first()
        if template is None:
            raise ValidationFailed("No such template.", fields={"template": ["Not found."]})
        values.update(template.parameters)
    values.update({k: v for k, v in data.items() if k != "template"})
    missing = [name for name in TaskIn.REQUIRED if values.get(name) in (None, "")]
    if missing:
        raise ValidationFailed("Some required fields are missing.",
                               fields={name: ["This field is required."] for name in missing})
    for key in ("project", "train_dataset", "test_dataset"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    return values


class TaskOut(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id")
    job = serializers.UUIDField(source="job_id")
    algorithm = serializers.CharField(source="model_name")
    model = serializers.UUIDField(source="model_id")
    train_dataset = serializers.UUIDField(source="train_dataset_id")
    test_dataset = serializers.UUIDField(source="test_dataset_id")
    spec = serializers.UUIDField(source="spec_id")
    version = serializers.CharField(source="version_label")
    epochs = serializers.SerializerMethodField()
    learning_rate = serializers.SerializerMethodField()
    batch_size = serializers.SerializerMethodField()
    warmup_epochs = serializers.SerializerMethodField()
    estimated_total_s = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "project", "job", "version", "name", "scenario", "algorithm",
                  "train_dataset", "test_dataset", "output_path", "target_metric",
                  "metric_name", "max_duration_s", "epochs", "learning_rate", "batch_size",
                  "warmup_epochs", "billing_mode", "spec", "spec_name", "state", "stage",
                  "stop_reason", "progress", "epoch", "step", "elapsed_s", "eta_s",
                  "estimated_total_s", "best_metric", "model", "failure", "attempt", "node",
                  "resources", "warnings", "created_at", "started_at", "finished_at"]

    def get_epochs(self, task: Task) -> int | None:
        return task.config.get("epochs")

    def get_learning_rate(self, task: Task) -> float | None:
        return task.config.get("learning_rate")

    def get_batch_size(self, task: Task) -> int | None:
        return task.config.get("batch_size")

    def get_warmup_epochs(self, task: Task) -> float | None:
        return task.config.get("warmup_epochs")

    def get_estimated_total_s(self, task: Task) -> float | None:
        return None if task.eta_s is None else round(task.elapsed_s + task.eta_s, 1)

    def get_failure(self, task: Task) -> dict[str, str] | None:
        if not task.failure_code:
            return None
        return {"code": task.failure_code, "message": task.failure_message}


class TaskViews:
    resource = "task"
    permission_classes = [RoleAllows]
    serializer_class = TaskOut

    def get_queryset(self) -> QuerySet:
        tasks = Task.objects.for_tenant(tenant_access(self.request).tenant_id)
        for name in ("project", "job"):
            value = uuid_param(self.request, name)
            if value is not None:
                tasks = tasks.filter(**{f"{name}_id": value})
        for name, choices in (("state", STATES), ("scenario", commands.SCENARIOS)):
            value = choice_param(self.request, name, choices)
            if value is not None:
                tasks = tasks.filter(**{name: value})
        return tasks


TASK_FILTERS = [
    OpenApiParameter("project", OpenApiTypes.UUID, description="Only this project's tasks."),
    OpenApiParameter("job", OpenApiTypes.UUID, description="Only this job's versions."),
    OpenApiParameter("state", OpenApiTypes.STR, enum=list(STATES)),
    OpenApiParameter("scenario", OpenApiTypes.STR, enum=list(commands.SCENARIOS)),
]


@extend_schema_view(get=extend_schema(parameters=TASK_FILTERS))
class TaskListView(TaskViews, generics.ListAPIView):
    """The tenant's tasks, newest first; POST creates one and queues it (402 if short)."""

    refuses = {"POST": (InsufficientFunds,)}

    @extend_schema(request=TaskIn, responses={201: TaskOut})
    def post(self, request: Request) -> Response:
        access = tenant_access(request)
        values = _with_template(access, valid(TaskIn, request))
        with _naming_algorithm(request):
            task = commands.create_task(access, values)
        return Response(TaskOut(task).data, status=status.HTTP_201_CREATED)


class TaskDetailView(TaskViews, generics.RetrieveAPIView):
    pass


class TaskStopView(TaskViews, generics.GenericAPIView):
    """Ask a task to stop: a queued one stops now, a running one within one training step."""

    action_names = {"POST": "update"}
    refuses = (TaskNotRunning,)

    @extend_schema(request=None, responses={202: TaskOut})
    def post(self, request: Request, pk: str) -> Response:
        self.get_object()
        task = commands.stop(tenant_access(request), pk)
        return Response(TaskOut(task).data, status=status.HTTP_202_ACCEPTED)


class TaskRestartView(TaskViews, generics.GenericAPIView):
    """Queue a failed, stopped or interrupted task again, from its last checkpoint."""

    action_names = {"POST": "update"}
    refuses = (TaskNotRestartable, InsufficientFunds)

    @extend_schema(request=None, responses={202: TaskOut})
    def post(self, request: Request, pk: str) -> Response:
        self.get_object()
        task = commands.restart(tenant_access(request), pk)
        return Response(TaskOut(task).data, status=status.HTTP_202_ACCEPTED)


class MetricPointOut(serializers.Serializer):
    epoch = serializers.IntegerField()
    value = serializers.FloatField()


class TaskMetricsOut(serializers.Serializer):
    series = serializers.DictField(child=MetricPointOut(many=True),
                                   help_text="Per metric name (loss, accuracy, ...), by epoch.")


class TaskMetricsView(TaskViews, generics.GenericAPIView):
    """`{"series": {"loss": [{"epoch", "value"}], "accuracy": [...]}}` per epoch."""

    @extend_schema(responses={200: TaskMetricsOut})
    def get(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        series: dict[str, list[dict[str, float]]] = {}
        points = TaskMetric.objects.for_tenant(task.tenant_id).filter(task_id=task.id)
        for point in points.order_by("name", "epoch", "id"):
            series.setdefault(point.name, []).append({"epoch": point.epoch,
                                                      "value": point.value})
        return Response({"series": series})


class TaskVersionsView(TaskViews, generics.GenericAPIView):
    """The versions of this task's job (V001, V002, ...); POST retrains as a new version."""

    action_names = {"POST": "create"}
    refuses = {"POST": (InsufficientFunds,)}

    @extend_schema(responses={200: TaskOut(many=True)})
    def get(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        versions = Task.objects.for_tenant(task.tenant_id).filter(job_id=task.job_id)
        return Response({"results": TaskOut(versions.order_by("version"), many=True).data,
                         "next": None})

    @extend_schema(request=TaskIn, responses={201: TaskOut})
    def post(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = valid(TaskIn, request)
        data.pop("template", None)
        with _naming_algorithm(request):
            task = commands.retrain(tenant_access(request), pk, data)
        return Response(TaskOut(task).data, status=status.HTTP_201_CREATED)


_COMPARED = ("algorithm", "train_dataset", "test_dataset", "target_metric", "max_duration_s",
             "epochs", "learning_rate", "batch_size", "warmup_epochs", "billing_mode", "spec")


class TaskCompareView(TaskViews, generics.GenericAPIView):
    """Two versions side by side: configuration and metric differences (`?with=<task id>`)."""

    @extend_schema(parameters=[OpenApiParameter("with", OpenApiTypes.UUID, required=True,
                                                description="The other version's task id.")],
                   responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        other = self.get_queryset().filter(id=uuid_param(request, "with")).first()
        if other is None:
            raise ValidationFailed("Name the task to compare with.",
                                   fields={"with": ["No such task."]})
        mine, theirs = TaskOut(task).data, TaskOut(other).data
        config = {name: {"a": mine[name], "b": theirs[name]} for name in _COMPARED
                  if mine[name] != theirs[name]}
        metrics = {}
        for name in ("best_metric", "elapsed_s"):
            a, b = mine[name], theirs[name]
            metrics[name] = {"a": a, "b": b,
                             "difference": None if a is None or b is None else b - a}
        return Response({"a": mine["id"], "b": theirs["id"], "versions": [mine["version"],
                         theirs["version"]], "config": config, "metrics": metrics})


class TemplateIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class TemplateOut(serializers.ModelSerializer):
    source_task = serializers.UUIDField(source="source_task_id")

    class Meta:
        model = TaskTemplate
        fields = ["id", "name", "parameters", "source_task", "created_at"]


class TaskTemplateSaveView(TaskViews, generics.GenericAPIView):
    """Save this task's parameters as a template (create tasks with `"template": id`)."""

    action_names = {"POST": "create"}

    @extend_schema(request=TemplateIn, responses={201: TemplateOut})
    def post(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = valid(TemplateIn, request)
        template = commands.save_template(tenant_access(request), pk, data["name"])
        return Response(TemplateOut(template).data, status=status.HTTP_201_CREATED)


class TemplateListView(generics.ListAPIView):
    resource = "task"
    permission_classes = [RoleAllows]
    serializer_class = TemplateOut

    def get_queryset(self) -> QuerySet:
        return TaskTemplate.objects.for_tenant(tenant_access(self.request).tenant_id)
