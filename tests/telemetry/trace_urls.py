"""A route that queues a job, for the trace test (tests/telemetry/test_traces.py)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from core.work import Work

TRACED = Work("telemetry_test_traced", "cpu")


def queue_a_job(request: HttpRequest) -> JsonResponse:
    TRACED.send_on_commit("t-1")
    return JsonResponse({"queued": True}, status=202)


urlpatterns = [path("traced/", queue_a_job)]
