"""HTTP for evaluations: create and list runs, the report, and reports at other operating points.

Report routes answer from the stored results (evaluation.results), never by running anything:
`?iou=` (0.50 .. 0.95 in 0.05 steps) and `?score_threshold=` move the operating point.
"""

import uuid
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import valid
from accounts.permissions import RoleAllows, tenant_access
from core.errors import ValidationFailed, WrongState
from evaluation import commands, reports, results
from evaluation.models import Evaluation

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


class EvaluationOut(serializers.ModelSerializer):
    project = serializers.UUIDField(source="project_id")
    model = serializers.UUIDField(source="model_id")
    dataset = serializers.UUIDField(source="dataset_id")
    spec = serializers.UUIDField(source="spec_id")
    iou = serializers.FloatField()
    score_threshold = serializers.FloatField()
    failure = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = ["id", "state", "project", "model", "dataset", "scenario", "iou",
                  "score_threshold", "spec", "spec_name", "billing_mode", "summary", "metrics",
                  "failure", "created_at", "started_at", "finished_at"]

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
        params = self.request.query_params
        if params.get("state"):
            evaluations = evaluations.filter(state=params["state"])
        for name in ("model", "dataset"):
            if params.get(name):
                try:
                    value = uuid.UUID(params[name])
                except ValueError:
                    raise ValidationFailed(f"{name} must be an id.",
                                           fields={name: ["Not an id."]}) from None
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
        raise WrongState(f"The evaluation is {evaluation.state}; its reports exist once it has "
                         "succeeded.")
    return results.load(evaluation.results_key)


def _moved(request: Request) -> bool:
    return any(request.query_params.get(n) not in (None, "") for n in ("iou", "score_threshold"))


class EvaluationListView(EvaluationViews, generics.ListAPIView):
    """The tenant's evaluations, newest first; POST evaluates a model on a dataset (402 if
    short)."""

    @extend_schema(request=EvaluationIn, responses={201: EvaluationOut})
    def post(self, request: Request) -> Response:
        """Create an evaluation and queue it."""
        data = valid(EvaluationIn, request)
        values = {k: (str(v) if k in ("model", "dataset") else v) for k, v in data.items()}
        evaluation = commands.create_evaluation(tenant_access(request), values)
        return Response(EvaluationOut(evaluation).data, status=status.HTTP_201_CREATED)


class EvaluationDetailView(EvaluationViews, generics.RetrieveAPIView):
    """The evaluation; with `?iou=` / `?score_threshold=` its metrics at that operating point."""

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The report, metrics moved when asked."""
        evaluation = self.get_object()
        body = EvaluationOut(evaluation).data
        if _moved(request):
            iou, score = operating_point(request, evaluation)
            body["metrics"] = reports.metrics(stored_results(evaluation), iou, score)
        return Response(body)


class EvaluationMetricsView(EvaluationViews, generics.GenericAPIView):
    """The metrics at `?iou=` and `?score_threshold=` (default: the run's), from stored results."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """Metrics at the operating point."""
        evaluation = self.get_object()
        iou, score = operating_point(request, evaluation)
        return Response(reports.metrics(stored_results(evaluation), iou, score))


class EvaluationPredictionsView(EvaluationViews, generics.GenericAPIView):
    """The COCO results list (unpaginated); classification: the top labels of every image."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """Every prediction of the run."""
        return Response(reports.predictions(stored_results(self.get_object())))


class EvaluationBadcasesView(EvaluationViews, generics.GenericAPIView):
    """Images with errors: `?true_label=&predicted_label=&kind=false_positive|missed`, paged by
    `?offset=&limit=`."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """One page of badcases at the operating point."""
        evaluation = self.get_object()
        iou, score = operating_point(request, evaluation)
        params = request.query_params
        kind = params.get("kind") or None
        if kind is not None and kind not in BADCASE_KINDS:
            raise ValidationFailed("kind must be false_positive or missed.",
                                   fields={"kind": [f"Not one of {', '.join(BADCASE_KINDS)}."]})
        offset = int(_float(request, "offset", 0))
        limit = int(_float(request, "limit", DEFAULT_PAGE))
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"offset must be 0 or more and limit 1 to {MAX_PAGE}.",
                                   fields={"limit": ["Out of range."]})
        found = reports.badcases(stored_results(evaluation), iou, score,
                                 true_label=params.get("true_label") or None,
                                 predicted_label=params.get("predicted_label") or None,
                                 kind=kind)
        following = None
        if offset + limit < len(found):
            query = {**params.dict(), "offset": offset + limit, "limit": limit}
            following = request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
        return Response({"results": found[offset:offset + limit], "next": following,
                         "count": len(found)})


class EvaluationConfusionView(EvaluationViews, generics.GenericAPIView):
    """Label x prediction counts; detection adds missed, background and low-overlap buckets."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        """The confusion matrix at the operating point."""
        evaluation = self.get_object()
        iou, score = operating_point(request, evaluation)
        return Response(reports.confusion(stored_results(evaluation), iou, score))
