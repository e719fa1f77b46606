"""The web console's pages: HTML shells whose scripts call the public API and the websocket."""

from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("signin/", views.sign_in, name="signin"),
    path("signout/", views.sign_out, name="signout"),
    path("tenant/", views.switch_tenant, name="tenant"),
    path("projects/", views.page, {"name": "projects"}, name="projects"),
    path("tasks/", views.page, {"name": "tasks"}, name="tasks"),
    path("tasks/<uuid:pk>/", views.page, {"name": "task"}, name="task"),
    path("datasets/", views.page, {"name": "datasets"}, name="datasets"),
    path("datasets/<uuid:pk>/", views.page, {"name": "dataset"}, name="dataset"),
    path("evaluations/", views.page, {"name": "evaluations"}, name="evaluations"),
    path("evaluations/<uuid:pk>/", views.page, {"name": "evaluation"}, name="evaluation"),
    path("services/", views.page, {"name": "services"}, name="services"),
    path("services/<uuid:pk>/", views.page, {"name": "service"}, name="service"),
    path("billing/", views.page, {"name": "billing"}, name="billing"),
]
