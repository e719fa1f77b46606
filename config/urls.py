from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts
from billing import report_views, topup_views
from billing import views as billing
from core.health import HealthView
from core.views import not_found
from eventlog.api import EventFeedView

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
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema")),
]

urlpatterns = [
    path("api/v1/", include(api)),
    re_path(r"^api/", not_found),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
