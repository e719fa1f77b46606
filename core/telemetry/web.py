"""Per-request telemetry in Django's chain: metrics by route template and status, and the ids
each log line of the request carries."""

import functools
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from core.middleware import _BothModes
from core.telemetry import logcontext, metrics
from core.views import not_found

# The URL segment before a route's `<...pk>` names what the id is; only these are logged.
_ID_OF_SEGMENT = {"tasks": "task_id", "evaluations": "evaluation_id", "services": "service_id",
                  "datasets": "dataset_id"}
# One line a request, with its ids (the JSON log's access line; in text, uvicorn's does).
access_log = logging.getLogger("core.access")
UNMATCHED = "unmatched"  # one label for every path no route takes: no cardinality from scans


@functools.lru_cache(maxsize=512)
def _id_name(route: str) -> str | None:
    segments = route.strip("/").split("/")
    for before, segment in itertools.pairwise(segments):
        if segment.startswith("<") and segment.endswith("pk>"):
            return _ID_OF_SEGMENT.get(before)
    return None


def route_of(request: HttpRequest) -> str:
    """The route template that took the request ("api/v1/tasks/<uuid:pk>/"), not its path."""
    forced = getattr(request, "telemetry_route", None)
    if forced:
        return forced
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route or match.func is not_found:  # the API's catch-all
        return UNMATCHED
    return "/" + match.route


class TelemetryMiddleware(_BothModes):
    """Count and time each request by route template and status; bind its ids for logging."""

    def __init__(self, get_response: Callable[[HttpRequest], Any], *,
                 route: str | None = None):
        super().__init__(get_response)
        self.route = route  # a chain serving one route (the prediction gateway) names it
        # Django adapts a sync process_view to an async chain with a thread hop: give it the
        # chain's own mode.
        self.process_view = self._aprocess_view if self.is_async else self._process_view

    def _process_view(self, request: HttpRequest, view: object, args: tuple,
                      kwargs: dict) -> None:
        match = getattr(request, "resolver_match", None)
        name = _id_name(match.route) if match is not None and match.route else None
        if name and "pk" in kwargs:
            logcontext.bind(**{name: kwargs["pk"]})

    async def _aprocess_view(self, request: HttpRequest, view: object, args: tuple,
                             kwargs: dict) -> None:
        self._process_view(request, view, args, kwargs)

    def _record(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        """Count, time and log the answer (inside the request's log context)."""
        if self.route:
            request.telemetry_route = self.route
        route, status = route_of(request), response.status_code
        elapsed = time.monotonic() - started
        metrics.HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
        metrics.HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info("%s %s %s", request.method, route, status, extra={
                "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)})

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Sync mode."""
        started = time.monotonic()
        with logcontext.bound(request):
            response = self.get_response(request)
            self._record(request, response, started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Async mode."""
        started = time.monotonic()
        with logcontext.bound(request):
            response = await self.get_response(request)
            self._record(request, response, started)
        return response


def wrap(chain: Callable[[HttpRequest], Awaitable[HttpResponse]], route: str
         ) -> TelemetryMiddleware:
    """The middleware around a chain that serves only `route` (a gateway outside Django's)."""
    return TelemetryMiddleware(chain, route=route)
