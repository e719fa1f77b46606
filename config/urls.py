from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from accounts import views as accounts
from billing import report_views, topup_views
from billing import views as billing
from core.health import HealthView
from core.schema_view import SchemaView
from core.views import not_found
from datasets import views as datasets
from evaluation import views as evaluations
from eventlog.views import EventFeedView
from lineage import views as lineage
from modelregistry import downloads as model_downloads
from modelregistry import views as models
from serving import views as services
from tasklogs import views as tasklogs_views
from tasks import views as tasks

api = [
    path("health/", HealthView.as_view()),
    path("auth/signup/", accounts.SignupView.as_view()),
    path("auth/token/", accounts.TokenView.as_view()),
    path("me/", accounts.MeView.as_view()),
    path("tokens/", accounts.ApiTokenListView.as_view()),
    path("tokens/<uuid:pk>/", accounts.ApiTokenDetailView.as_view()),
    path("ws-tickets/", accounts.WebsocketTicketView.as_view()),
    path("members/", accounts.MemberListView.as_view()),
    path("members/<uuid:pk>/", accounts.MemberDetailView.as_view()),
    path("projects/", accounts.ProjectListView.as_view()),
    path("projects/<uuid:pk>/", accounts.ProjectDetailView.as_view()),
    path("events/", EventFeedView.as_view()),
    path("datasets/", datasets.DatasetListView.as_view()),
    path("datasets/<uuid:pk>/", datasets.DatasetDetailView.as_view()),
    path("datasets/<uuid:pk>/versions/", datasets.DatasetVersionListView.as_view()),
    path("datasets/<uuid:pk>/corrections/", datasets.DatasetCorrectionListView.as_view()),
    path("billing/specs/", billing.ComputeSpecListView.as_view()),
    path("billing/specs/<uuid:pk>/", billing.ComputeSpecDetailView.as_view()),
    path("billing/wallet/", billing.WalletView.as_view()),
    path("billing/prepaid/", billing.PrepaidView.as_view()),
    path("billing/meters/", billing.MeterListView.as_view()),
    path("billing/usage/", report_views.UsageView.as_view()),
    path("billing/ledger/", report_views.LedgerView.as_view()),
    path("billing/statements/", report_views.StatementView.as_view()),
    path("billing/topups/", topup_views.TopupListView.as_view()),
    path("billing/stripe/webhook/", topup_views.StripeWebhookView.as_view()),
    path("tasks/", tasks.TaskListView.as_view()),
    path("tasks/<uuid:pk>/", tasks.TaskDetailView.as_view()),
    path("tasks/<uuid:pk>/stop/", tasks.TaskStopView.as_view()),
    path("tasks/<uuid:pk>/restart/", tasks.TaskRestartView.as_view()),
    path("tasks/<uuid:pk>/metrics/", tasks.TaskMetricsView.as_view()),
    path("tasks/<uuid:pk>/versions/", tasks.TaskVersionsView.as_view()),
    path("tasks/<uuid:pk>/compare/", tasks.TaskCompareView.as_view()),
    path("tasks/<uuid:pk>/lineage/", lineage.TaskLineageView.as_view()),
    path("tasks/<uuid:pk>/template/", tasks.TaskTemplateSaveView.as_view()),
    path("task-templates/", tasks.TemplateListView.as_view()),
    path("models/", models.ModelListView.as_view()),
    path("models/<uuid:pk>/", models.ModelDetailView.as_view()),
    path("models/<uuid:pk>/download/", model_downloads.ModelDownloadView.as_view()),
    path("models/<uuid:pk>/check/", models.ModelCheckView.as_view()),
    path("tasks/<uuid:pk>/logs/", tasklogs_views.TaskLogView.as_view()),
    path("evaluations/", evaluations.EvaluationListView.as_view()),
    path("evaluations/<uuid:pk>/", evaluations.EvaluationDetailView.as_view()),
    path("evaluations/<uuid:pk>/metrics/", evaluations.EvaluationMetricsView.as_view()),
    path("evaluations/<uuid:pk>/predictions/", evaluations.EvaluationPredictionsView.as_view()),
    path("evaluations/<uuid:pk>/badcases/", evaluations.EvaluationBadcasesView.as_view()),
    path("evaluations/<uuid:pk>/confusion/", evaluations.EvaluationConfusionView.as_view()),
    path("evaluations/<uuid:pk>/confusion/cell/",
         evaluations.EvaluationConfusionCellView.as_view()),
    path("evaluations/<uuid:pk>/curves/", evaluations.EvaluationCurvesView.as_view()),
    path("evaluations/<uuid:pk>/label/", evaluations.EvaluationLabelView.as_view()),
    path("evaluations/<uuid:pk>/errors/", evaluations.EvaluationErrorsView.as_view()),
    path("evaluations/<uuid:pk>/instances/", evaluations.EvaluationInstancesView.as_view()),
    path("evaluations/<uuid:pk>/image/", evaluations.EvaluationImageView.as_view()),
    path("evaluations/<uuid:pk>/heatmap/", evaluations.EvaluationHeatmapView.as_view()),
    path("evaluations/<uuid:pk>/stop/", evaluations.EvaluationStopView.as_view()),
    path("evaluation-previews/<str:token>/", evaluations.EvaluationPreviewView.as_view()),
    path("services/", services.ServiceListView.as_view()),
    path("services/<uuid:pk>/", services.ServiceDetailView.as_view()),
    path("services/<uuid:pk>/stop/", services.ServiceStopView.as_view()),
    path("services/<uuid:pk>/model/", services.ServiceModelView.as_view()),
    path("services/<uuid:pk>/key/", services.ServiceKeyView.as_view()),
    path("services/<uuid:pk>/predict/", services.ServicePredictView.as_view()),
    path("services/<uuid:pk>/monitoring/", services.ServiceMonitoringView.as_view()),
    path("services/<uuid:pk>/events/", services.ServiceEventsView.as_view()),
    path("services/<uuid:pk>/logs/", services.ServiceLogView.as_view()),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema")),
]

urlpatterns = [
    path("api/v1/", include(api)),
    path("console/", include("console.urls")),
    re_path(r"^api/", not_found),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
