"""HTTP for evaluations: create and list runs, the report, and reports at other operating points.

Report routes answer from the stored results (evaluation.results), never by running anything:
`?iou=` (0.50 .. 0.95 in 0.05 steps) and `?score_threshold=` move the operating point.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import RoleAllows, tenant_access
from core.errors import (
    EvaluationNotRunning,
    EvaluationNotSucceeded,
    InsufficientFunds,
    ValidationFailed,
)
from core.links import public_url
from core.query_params import choice_param, int_param, uuid_param
from core.request_body import valid
from evaluation import analysis, commands, heatmaps, previews, reports, results
from evaluation.models import STATES, Evaluation

BADCASE_KINDS = ("false_positive", "missed")
DEFAULT_PAGE = 50
MAX_PAGE = 500


class EvaluationIn(serializers.Serializer):
    model = serializers.UUIDField()
    dataset = serializers.UUIDField()
    iou = serializers.FloatField(required=False)
    score_threshold = serializers.FloatField(required=False)
    spec = serializers.CharField(max_length=64, required=False)
    billing_mode = serializers.ChoiceField(choices=("postpaid", "prepaid"), required=False)
    # validation-task settings (E11)
    score_thresholds = serializers.DictField(child=serializers.FloatField(), required=False)
    low_overlap_iou = serializers.FloatField(required=False)
    device = serializers.ChoiceField(choices=commands.DEVICES, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=256, required=False)
    image_size = serializers.IntegerField(min_value=32, max_value=2048, required=False)


class EvaluationOut(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id")
    model = serializers.UUIDField(source="model_id")
    task = serializers.UUIDField(source="task_id")
    dataset = serializers.UUIDField(source="dataset_id")
    spec = serializers.UUIDField(source="spec_id")
    iou = serializers.FloatField()
    score_threshold = serializers.FloatField()
    failure = serializers.SerializerMethodField()
    progress = serializers.FloatField(
        help_text="Share of the test images predicted so far, 0 to 1 (1 once succeeded).")
    images_done = serializers.IntegerField(help_text="Test images predicted so far.")
    images_total = serializers.IntegerField(
        allow_null=True, help_text="Test images to predict; null until the run has read them.")
    eta_s = serializers.FloatField(
        allow_null=True, help_text="Seconds left at the run's pace; null until it has one.")

    class Meta:
        model = Evaluation
        fields = ["id", "state", "project", "model", "task", "dataset", "scenario", "iou",
                  "score_threshold", "options", "spec", "spec_name", "billing_mode", "summary",
                  "metrics", "failure", "stop_reason", "progress", "images_done",
                  "images_total", "eta_s", "created_at", "started_at", "finished_at"]

    def get_failure(self, evaluation: Evaluation) -> dict[str, str] | None:
        """The failure's code and message, when it failed."""
        if not evaluation.failure_code:
            return None
        return {"code": evaluation.failure_code, "message": evaluation.failure_message}


class EvaluationViews:
    resource = "evaluation"
    permission_classes = [RoleAllows]
    serializer_class = EvaluationOut

    def get_queryset(self) -> QuerySet:
        """The caller's tenant's evaluations (`?model=` and `?dataset=` narrow them)."""
        evaluations = Evaluation.objects.for_tenant(tenant_access(self.request).tenant_id)
        state = choice_param(self.request, "state", STATES)
        if state is not None:
            evaluations = evaluations.filter(state=state)
        for name in ("model", "dataset", "task"):
            value = uuid_param(self.request, name)
            if value is not None:
                evaluations = evaluations.filter(**{f"{name}_id": value})
        return evaluations


def _float(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number.",
                               fields={name: ["Not a number."]}) from None


def operating_point(request: Request, evaluation: Evaluation) -> tuple[float, float]:
    """The IoU and score threshold asked for, defaulting to the run's own."""
    iou = commands.check_iou(_float(request, "iou", evaluation.iou))
    score = commands.check_score_threshold(_float(request, "score_threshold",
                                                  evaluation.score_threshold))
    return iou, score


def stored_results(evaluation: Evaluation) -> results.Results:
    """The evaluation's parsed results; 409 until it has succeeded."""
    if evaluation.state != "succeeded" or not evaluation.results_key:
        raise EvaluationNotSucceeded(f"The evaluation is {evaluation.state}; its reports exist "
                                     "once it has succeeded.")
    return results.load(evaluation.results_key)


def iou_type(request: Request, evaluation: Evaluation) -> str:
    """`?iou_type=`: "bbox" (default) or "segm" (masks, segmentation evaluations only)."""
    value = request.query_params.get("iou_type") or "bbox"
    if value not in ("bbox", "segm"):
        raise ValidationFailed("iou_type must be bbox or segm.",
                               fields={"iou_type": ["Not one of bbox, segm."]})
    if value == "segm" and (evaluation.scenario != "segmentation"
                            or stored_results(evaluation).coco_mask is None):
        raise ValidationFailed(
            "iou_type segm needs a segmentation evaluation with stored masks; use bbox, or "
            "evaluate the segmentation model again.",
            fields={"iou_type": ["Only segmentation evaluations with masks have segm."]})
    return value


def _moved(request: Request) -> bool:
    return any(request.query_params.get(n) not in (None, "") for n in ("iou", "score_threshold"))


def _reported(compute: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an analysis; its ReportError becomes a 400 naming the query parameter."""
    try:
        return compute(*args, **kwargs)
    except analysis.ReportError as exc:
        raise ValidationFailed(str(exc), fields={exc.field: [str(exc)]}) from None


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    return int_param(request, name, low=low, high=high, default=default)


def page_asked(request: Request, default: int = DEFAULT_PAGE) -> tuple[int, int]:
    """`?offset=&limit=`: the first item and how many."""
    return _int(request, "offset", 0, 0, 10**9), _int(request, "limit", default, 1, MAX_PAGE)


def page_body(request: Request, offset: int, limit: int, count: int, page: list[Any]
              ) -> dict[str, Any]:
    """`{"results", "next", "count"}` for the page at offset of `count` items."""
    following = None
    if offset + limit < count:
        query = {**request.query_params.dict(), "offset": offset + limit, "limit": limit}
        following = public_url(f"{request.path}?{urlencode(query)}")
    return {"results": page, "next": following, "count": count}


def paged(request: Request, items: list[Any], default: int = DEFAULT_PAGE) -> dict[str, Any]:
    """`{"results", "next", "count"}` for one `?offset=&limit=` page of `items`."""
    offset, limit = page_asked(request, default)
    return page_body(request, offset, limit, len(items), items[offset:offset + limit])


def _param(name: str, kind: OpenApiTypes = OpenApiTypes.STR, description: str = "",
           **options: Any) -> OpenApiParameter:
    return OpenApiParameter(name, kind, description=description, **options)


# The query parameters of the report routes, for the schema (parsed by the helpers above).
POINT = [_param("iou", OpenApiTypes.NUMBER, "IoU threshold (default: the run's)."),
         _param("score_threshold", OpenApiTypes.NUMBER, "Default: the run's."),
         _param("iou_type", enum=["bbox", "segm"], description="segm: masks (segmentation).")]
PAGE = [_param("offset", OpenApiTypes.INT, "The first item (default 0)."),
        _param("limit", OpenApiTypes.INT, f"How many (1-{MAX_PAGE}).")]
PREVIEW = _param("preview", OpenApiTypes.BOOL, "Add a short-lived signed image link.")


class _Point:
    """The operating point a report request asks for, over the evaluation's stored results."""

    def __init__(self, request: Request, evaluation: Evaluation) -> None:
        self.results = stored_results(evaluation)
        self.iou, base = operating_point(request, evaluation)
        self.score = analysis.score_of(self.results, base, evaluation.score_thresholds)
        self.low_iou = min(evaluation.low_iou, self.iou)
        self.iou_type = iou_type(request, evaluation)


def _wants_preview(request: Request) -> bool:
    return request.query_params.get("preview") in ("1", "true")


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ValidationFailed(f"{name} is required.", fields={name: ["This field is required."]})
    return value


def _labels(request: Request) -> list[str] | None:
    """`?labels=a,b` or repeated `?labels=a&labels=b`."""
    raw = request.query_params.getlist("labels")
    names = [name.strip() for value in raw for name in value.split(",") if name.strip()]
    return names or None


@extend_schema_view(get=extend_schema(parameters=[
    OpenApiParameter("state", OpenApiTypes.STR, enum=list(STATES)),
    *(OpenApiParameter(name, OpenApiTypes.UUID, description=f"Only evaluations of this {name}.")
      for name in ("model", "dataset", "task"))]))
class EvaluationListView(EvaluationViews, generics.ListAPIView):
    """The tenant's evaluations, newest first; POST evaluates a model on a dataset (402 if
    short)."""

    refuses = {"POST": (InsufficientFunds,)}

    @extend_schema(request=EvaluationIn, responses={201: EvaluationOut})
    def post(self, request: Request) -> Response:
        """Create an evaluation and queue it."""
        data = valid(EvaluationIn, request)
        values = {k: (str(v) if k in ("model", "dataset") else v) for k, v in data.items()}
        evaluation = commands.create_evaluation(tenant_access(request), values)
        return Response(EvaluationOut(evaluation).data, status=status.HTTP_201_CREATED)


@extend_schema_view(get=extend_schema(parameters=POINT[:2]))
class EvaluationDetailView(EvaluationViews, generics.RetrieveAPIView):
    """The evaluation; with `?iou=` / `?score_threshold=` its metrics at that operating point."""

    refuses = (EvaluationNotSucceeded,)  # an operating point asked of an unfinished run

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The report, metrics moved when asked."""
        evaluation = self.get_object()
        body = EvaluationOut(evaluation).data
        if _moved(request):
            point = _Point(request, evaluation)
            body["metrics"] = reports.metrics(point.results, point.iou, point.score)
        return Response(body)


class EvaluationMetricsView(EvaluationViews, generics.GenericAPIView):
    """The metrics at `?iou=` and `?score_threshold=` (default: the run's), from stored results."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=POINT, responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """Metrics at the operating point."""
        point = _Point(request, self.get_object())
        return Response(reports.metrics(point.results, point.iou, point.score))


class EvaluationPredictionsView(EvaluationViews, generics.GenericAPIView):
    """The COCO results list (unpaginated); classification: the top labels of every image."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """Every prediction of the run."""
        return Response(reports.predictions(stored_results(self.get_object())))


class EvaluationBadcasesView(EvaluationViews, generics.GenericAPIView):
    """Images with errors: `?true_label=&predicted_label=&kind=false_positive|missed`, paged by
    `?offset=&limit=`; `?iou_type=segm` lists mask errors (segmentation); `?preview=true` adds
    a signed image link to each entry."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[
        *POINT, *PAGE, _param("true_label"), _param("predicted_label"),
        _param("kind", enum=list(BADCASE_KINDS)), PREVIEW], responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """One page of badcases at the operating point."""
        point = _Point(request, self.get_object())
        params = request.query_params
        kind = params.get("kind") or None
        if kind is not None and kind not in BADCASE_KINDS:
            raise ValidationFailed("kind must be false_positive or missed.",
                                   fields={"kind": [f"Not one of {', '.join(BADCASE_KINDS)}."]})
        offset, limit = page_asked(request)
        count, page = reports.badcase_page(
            point.results, point.iou, point.score, true_label=params.get("true_label") or None,
            predicted_label=params.get("predicted_label") or None, kind=kind,
            iou_type=point.iou_type, low_iou=point.low_iou, offset=offset, limit=limit)
        if _wants_preview(request):  # previews cost storage reads: only when asked for
            evaluation = self.get_object()
            for entry in page:
                entry["preview_url"] = public_url(
                    previews.preview_path(evaluation, entry["file_name"]))
        return Response(page_body(request, offset, limit, count, page))


class EvaluationConfusionView(EvaluationViews, generics.GenericAPIView):
    """Label x prediction counts; detection adds missed, background and low-overlap buckets;
    `?labels=a,b` keeps a subset, `?per_side=10|15|20&row_page=&column_page=` one page;
    `?iou_type=segm` matches masks (segmentation)."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[
        *POINT, _param("labels", description="a,b: keep these labels."),
        _param("per_side", OpenApiTypes.INT, "10, 15 or 20: one page of the matrix."),
        _param("row_page", OpenApiTypes.INT), _param("column_page", OpenApiTypes.INT)],
        responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The confusion matrix (or a view of it) at the operating point."""
        point = _Point(request, self.get_object())
        per_side = request.query_params.get("per_side")
        return Response(_reported(
            analysis.confusion_view, point.results, point.iou, point.score,
            labels=_labels(request),
            per_side=_int(request, "per_side", 10, 1, 100) if per_side else None,
            row_page=_int(request, "row_page", 0, 0, 10**6),
            column_page=_int(request, "column_page", 0, 0, 10**6), low_iou=point.low_iou,
            iou_type=point.iou_type))


class EvaluationCurvesView(EvaluationViews, generics.GenericAPIView):
    """PR curve, threshold table (0.05 grid), AP and best-F1 threshold per label at `?iou=`;
    `?label=` keeps one label."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[*POINT, _param("label")], responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The curves of every label (or one)."""
        point = _Point(request, self.get_object())
        return Response(_reported(analysis.curves, point.results, point.iou,
                                  request.query_params.get("label") or None,
                                  iou_type=point.iou_type))


class EvaluationConfusionCellView(EvaluationViews, generics.GenericAPIView):
    """The images of one confusion cell: `?true_label=&predicted_label=` (detection: also
    true_label=background and predicted_label=missed|low_overlap), paged."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[
        *POINT, *PAGE, _param("true_label", required=True),
        _param("predicted_label", required=True)], responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """One page of the cell's images."""
        point = _Point(request, self.get_object())
        images = _reported(analysis.cell_images, point.results, point.iou, point.score,
                           _required(request, "true_label"),
                           _required(request, "predicted_label"), point.low_iou,
                           iou_type=point.iou_type)
        return Response(paged(request, images))


class EvaluationLabelView(EvaluationViews, generics.GenericAPIView):
    """One label (`?label=`): precision, recall, F1, misrecognition rate, image count; what it
    was predicted as (`?sort=count|label&order=desc|asc&q=`, paged) and the images wrongly
    predicted as it."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[
        *POINT, *PAGE, _param("label", required=True), _param("sort", enum=["count", "label"]),
        _param("order", enum=["desc", "asc"]), _param("q")], responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The label's detail."""
        point = _Point(request, self.get_object())
        params = request.query_params
        order = params.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise ValidationFailed("order must be asc or desc.", fields={"order": ["Not asc or "
                                                                                  "desc."]})
        body = _reported(analysis.label_detail, point.results, point.iou, point.score,
                         _required(request, "label"), sort=params.get("sort") or "count",
                         descending=order == "desc", q=params.get("q") or None,
                         low_iou=point.low_iou, iou_type=point.iou_type)
        body["predicted_as"] = paged(request, body["predicted_as"], default=20)
        return Response(body)


class EvaluationErrorsView(EvaluationViews, generics.GenericAPIView):
    """The error taxonomy at `?iou=`: classification, localisation, both, duplicate,
    background and missed errors, counted and with the AP gained by fixing each."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=POINT, responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """TIDE overall and per label."""
        point = _Point(request, self.get_object())
        return Response(_reported(analysis.error_taxonomy, point.results, point.iou,
                                  point.low_iou, iou_type=point.iou_type))


class EvaluationInstancesView(EvaluationViews, generics.GenericAPIView):
    """Every object and kept detection with its outcome (a validation task's instance details):
    `?label=&outcome=`, paged."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[*POINT, *PAGE, _param("label"), _param("outcome")],
                   responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """One page of instances."""
        point = _Point(request, self.get_object())
        params = request.query_params
        rows = _reported(analysis.instances, point.results, point.iou, point.score,
                         label=params.get("label") or None,
                         outcome=params.get("outcome") or None, low_iou=point.low_iou,
                         iou_type=point.iou_type)
        return Response(paged(request, rows))


class EvaluationImageView(EvaluationViews, generics.GenericAPIView):
    """One image (`?image_id=`): truth, every prediction with its confidence and its errors;
    `?preview=true` adds a short-lived signed link to the image."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[*POINT, _param("image_id", required=True), PREVIEW],
                   responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The image's detail."""
        evaluation = self.get_object()
        point = _Point(request, evaluation)
        body = _reported(analysis.image_detail, point.results, point.iou, point.score,
                         _required(request, "image_id"), point.low_iou,
                         iou_type=point.iou_type)
        if _wants_preview(request):
            body["preview_url"] = public_url(
                previews.preview_path(evaluation, body["file_name"]))
            body["preview_expires_in_s"] = previews.ttl_s()
        return Response(body)


class EvaluationHeatmapView(EvaluationViews, generics.GenericAPIView):
    """Grad-CAM of a classification image (`?image_id=&label=`, default the predicted label),
    computed on first request and cached."""

    refuses = (EvaluationNotSucceeded,)

    @extend_schema(parameters=[
        *POINT, _param("image_id", required=True),
        _param("label", description="Default: the predicted label.")], responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The heatmap as a grid of values in [0, 1]."""
        evaluation = self.get_object()
        point = _Point(request, evaluation)
        if not point.results.is_classification:
            raise ValidationFailed("Heatmaps exist for classification evaluations.",
                                   fields={"image_id": ["Not a classification evaluation."]})
        detail = _reported(analysis.image_detail, point.results, point.iou, point.score,
                           _required(request, "image_id"))
        label = request.query_params.get("label") or detail["predicted_label"]
        if label not in point.results.document["labels"]:
            raise ValidationFailed(f"The report has no label {label!r}.",
                                   fields={"label": ["Unknown label."]})
        labels = point.results.document["labels"]
        row = [i["id"] for i in point.results.document["images"]].index(detail["image_id"])
        score = float(point.results.scores[row, labels.index(label)])
        return Response(heatmaps.heatmap(evaluation, detail, label, score))


class EvaluationStopView(EvaluationViews, generics.GenericAPIView):
    """Stop a queued or running evaluation (409 once it has ended)."""

    refuses = (EvaluationNotRunning,)

    @extend_schema(request=None, responses={200: EvaluationOut})
    def post(self, request: Request, pk: str) -> Response:
        """Stop it; the worker gives up at its next batch."""
        evaluation = self.get_object()
        if not commands.stop_evaluation(evaluation.tenant_id, evaluation.id, "user"):
            raise EvaluationNotRunning(f"The evaluation is {evaluation.state}; only a queued or "
                                       "running evaluation can be stopped.")
        evaluation.refresh_from_db()
        return Response(EvaluationOut(evaluation).data)


class EvaluationPreviewView(APIView):
    """A test image behind a signed, short-lived link; the link is the only credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, token: str) -> HttpResponse:
        """The image bytes."""
        content, content_type = previews.open_preview(token)
        response = HttpResponse(content, content_type=content_type)
        response["Cache-Control"] = f"private, max-age={previews.ttl_s()}"
        return response
