"""HTTP for datasets: upload, list, read, delete (archive), versions and corrections."""

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
from core.errors import DatasetIsArchived, DatasetNotReady, DatasetUnreadable, NotLatestVersion
from core.pagination import CursorPagination
from core.query_params import bool_param, choice_param, int_param, uuid_param
from core.request_body import valid
from datasets import commands
from datasets.aggregates import STATES
from datasets.corrections import Correction, Obj
from datasets.models import Dataset, DatasetCorrection

SUPPORTED = {"classification": ("folders",), "detection": ("coco", "voc"),
             "segmentation": ("coco",)}
LAYOUTS = ("classification: a zip of one folder per label; detection and segmentation (coco): "
           "annotations.json at the root and the images under images/; detection (voc): "
           "Annotations/*.xml and the images under JPEGImages/.")


def choices(name: str, values: list[str]) -> type[serializers.ChoiceField]:
    """A ChoiceField with its own named enum component in the schema, so that it never
    collides with other apps' fields of the same name (`kind`, `state`) or the same values."""
    field = type(f"{name}Field", (serializers.ChoiceField,),
                 {"__doc__": f"One of {', '.join(values)}."})
    return extend_schema_field({"type": "string", "enum": values}, component_name=name)(field)


KindField = choices("DatasetKind", list(SUPPORTED))
FormatField = choices("DatasetFormat", list(Dataset.FORMATS))
StateField = choices("DatasetState", list(STATES))


class LabelOut(serializers.Serializer):
    name = serializers.CharField()
    count = serializers.IntegerField()
    share = serializers.FloatField()
    image_count = serializers.IntegerField()


class IssueOut(serializers.Serializer):
    file = serializers.CharField()
    message = serializers.CharField()
    code = serializers.CharField(required=False)
    line = serializers.IntegerField(required=False)
    annotation_id = serializers.JSONField(required=False)


class DatasetOut(serializers.ModelSerializer):
    kind = KindField(choices=list(SUPPORTED))
    format = FormatField(choices=list(Dataset.FORMATS))
    state = StateField(choices=list(STATES))
    labels = LabelOut(many=True)
    errors = IssueOut(many=True)
    warnings = IssueOut(many=True)

    class Meta:
        model = Dataset
        fields = ["id", "project", "name", "kind", "format", "version", "parent", "state",
                  "image_count", "labels", "errors", "warnings", "builtin", "size_bytes",
                  "created_at", "updated_at", "archived_at"]


class DatasetIn(serializers.Serializer):
    project = serializers.UUIDField()
    name = serializers.CharField(max_length=100)
    kind = KindField(choices=list(SUPPORTED))
    format = FormatField(choices=list(Dataset.FORMATS))
    file = serializers.FileField(help_text=f"The dataset as a zip. {LAYOUTS}")

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A name is required.")
        return value.strip()

    def validate(self, data: dict) -> dict:
        if data["format"] not in SUPPORTED[data["kind"]]:
            allowed = " or ".join(SUPPORTED[data["kind"]])
            raise serializers.ValidationError(
                {"format": [f"{data['kind']} datasets are uploaded as {allowed}, not "
                            f"{data['format']}."]})
        return data


class VersionIn(serializers.Serializer):
    file = serializers.FileField(help_text="The corrected dataset as a zip, same layout.")


class VersionPagination(CursorPagination):
    ordering = "version"


class DatasetViews:
    """The tenant's datasets and the built-in samples; DELETE archives (404 after).

    `?archived=true` lists the archived ones instead.
    """

    resource = "dataset"
    permission_classes = [RoleAllows]
    serializer_class = DatasetOut

    def get_queryset(self):  # noqa: ANN201
        datasets = Dataset.objects.visible_to(tenant_access(self.request).tenant_id)
        archived = bool_param(self.request, "archived", default=False)
        return datasets.filter(archived_at__isnull=not archived)


FILTERS = [
    OpenApiParameter("project", OpenApiTypes.UUID, description="Only this project's datasets."),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=list(SUPPORTED)),
    OpenApiParameter("state", OpenApiTypes.STR, enum=list(STATES)),
    OpenApiParameter("builtin", OpenApiTypes.BOOL, description="Only (or no) built-in samples."),
    OpenApiParameter("archived", OpenApiTypes.BOOL, description="Archived datasets instead."),
]


@extend_schema_view(get=extend_schema(parameters=FILTERS))
class DatasetListView(TakesUploads, DatasetViews, generics.ListCreateAPIView):
    def get_queryset(self):  # noqa: ANN201
        datasets = super().get_queryset()
        project = uuid_param(self.request, "project")
        if project is not None:
            datasets = datasets.filter(project=project)
        for name, choices in (("kind", SUPPORTED), ("state", STATES)):
            value = choice_param(self.request, name, choices)
            if value is not None:
                datasets = datasets.filter(**{name: value})
        builtin = bool_param(self.request, "builtin")
        if builtin is not None:
            datasets = datasets.filter(builtin=builtin)
        return datasets

    @extend_schema(request={"multipart/form-data": DatasetIn}, responses={201: DatasetOut})
    def post(self, request: Request) -> Response:
        data = valid(DatasetIn, request)
        dataset = commands.upload_dataset(tenant_access(request), project=data["project"],
                                          name=data["name"], kind=data["kind"],
                                          fmt=data["format"], upload=data["file"])
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(DatasetViews, generics.RetrieveAPIView):
    refuses = {"DELETE": (DatasetIsArchived,)}

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        self.get_object()
        commands.archive_dataset(tenant_access(request), pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetVersionListView(TakesUploads, DatasetViews, generics.ListCreateAPIView):
    """Every version of the dataset's line (v1, v2, ...), oldest first."""

    pagination_class = VersionPagination

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        dataset = self.get_object()
        versions = super().get_queryset().filter(origin=dataset.origin)
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request={"multipart/form-data": VersionIn}, responses={201: DatasetOut})
    def post(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = valid(VersionIn, request)
        dataset = commands.add_version(tenant_access(request), pk, data["file"])
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


# --- corrections (E12) ---------------------------------------------------------------------------


class ObjectIn(serializers.Serializer):
    label = serializers.CharField(max_length=128, trim_whitespace=False)
    bbox = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4,
                                 help_text="[x, y, width, height] in pixels.")
    segmentation = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), required=False,
        min_length=1, help_text="COCO polygons [[x1, y1, x2, y2, ...], ...]; optional: an "
        "object keeping its box keeps its mask. VOC datasets take none.")


class CorrectionItemIn(serializers.Serializer):
    file_name = serializers.CharField(
        max_length=1024, help_text="The image as the dataset and its evaluations name it "
        "(folders: cat/0001.jpg; coco: the file_name in annotations.json; voc: "
        "JPEGImages/0001.jpg).")
    label = serializers.CharField(max_length=128, required=False, trim_whitespace=False,
                                  help_text="Classification: the image's new label.")
    annotations = ObjectIn(many=True, required=False, max_length=1000,
                           help_text="Detection and segmentation: the image's full new list of "
                           "objects, replacing the old one ([] for none).")


class CorrectionIn(CorrectionItemIn):
    file_name = serializers.CharField(max_length=1024, required=False,
                                      help_text=CorrectionItemIn().fields["file_name"].help_text)
    corrections = CorrectionItemIn(many=True, required=False, min_length=1, max_length=1000,
                                   help_text="Several images at once, instead of file_name.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    evaluation = serializers.UUIDField(required=False,
                                       help_text="The evaluation whose badcase showed it.")
    task = serializers.UUIDField(required=False,
                                 help_text="The training task whose validation showed it.")
    allow_new_labels = serializers.BooleanField(
        default=False, help_text="Allow labels the dataset does not have yet (else a 400).")

    def validate(self, data: dict) -> dict:
        several = "corrections" in data
        if several == ("file_name" in data):
            raise serializers.ValidationError({"file_name": [
                "Send file_name with label or annotations, or corrections: [...] for several "
                "images."]})
        if several and ({"label", "annotations"} & set(data)):
            raise serializers.ValidationError({"corrections": [
                "With corrections, put each image's label or annotations inside its item."]})
        return data

    def corrections_asked(self) -> list[Correction]:
        data = self.validated_data
        return [Correction(item["file_name"], item.get("label"), None if "annotations" not in item
                           else tuple(Obj(o["label"], tuple(o["bbox"]), o.get("segmentation"))
                                      for o in item["annotations"]))
                for item in data.get("corrections", [data])]

    def seen_in(self) -> dict[str, str]:
        return {key: str(self.validated_data[key]) for key in ("evaluation", "task")
                if key in self.validated_data}


class CorrectionOut(serializers.ModelSerializer):
    class Meta:
        model = DatasetCorrection
        fields = ["dataset", "version", "parent", "file_name", "new_file_name", "before",
                  "after", "note", "source", "created_at"]


class CorrectedVersionOut(DatasetOut):
    corrections = CorrectionOut(many=True, source="corrections_made",
                                help_text="The corrections that made this version.")

    class Meta(DatasetOut.Meta):
        fields = [*DatasetOut.Meta.fields, "corrections"]


class CorrectionPagination(CursorPagination):
    ordering = "position"


@extend_schema_view(get=extend_schema(parameters=[
    OpenApiParameter("version", OpenApiTypes.INT, description="Only the corrections that made "
                     "this version.")]))
class DatasetCorrectionListView(DatasetViews, generics.ListCreateAPIView):
    """GET: the corrections of the dataset's whole line (every version), oldest first.
    POST: correct images of this version; answers with the new version it made (E12)."""

    serializer_class = CorrectionOut
    pagination_class = CorrectionPagination
    refuses = {"POST": (DatasetNotReady, NotLatestVersion, DatasetUnreadable)}

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        dataset = self.get_object()
        rows = DatasetCorrection.objects.for_tenant(tenant_access(request).tenant_id).filter(
            origin=dataset.origin)
        version = int_param(request, "version", low=1)
        if version is not None:
            rows = rows.filter(version=version)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(CorrectionOut(page, many=True).data)

    @extend_schema(request={"application/json": CorrectionIn},
                   responses={201: CorrectedVersionOut})
    def post(self, request: Request, pk: str) -> Response:
        self.get_object()
        asked = CorrectionIn(data=request.data)
        asked.is_valid(raise_exception=True)
        access = tenant_access(request)
        dataset = commands.correct_annotations(
            access, pk, asked.corrections_asked(), note=asked.validated_data["note"],
            source=asked.seen_in(), allow_new_labels=asked.validated_data["allow_new_labels"])
        dataset.corrections_made = list(DatasetCorrection.objects.for_tenant(access.tenant_id)
                                        .filter(dataset=dataset.id).order_by("position"))
        return Response(CorrectedVersionOut(dataset).data, status=status.HTTP_201_CREATED)
