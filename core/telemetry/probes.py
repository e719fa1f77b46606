"""/livez, /readyz and /metrics, answered before the rest of Django's chain.

First in MIDDLEWARE, so they pass no host check (kubelet names the pod's IP as Host, which no
ALLOWED_HOSTS lists), no HTTPS redirect, no throttle and no session: nothing else is exempted,
and every other route keeps the host check. /metrics is refused (403) unless the caller's address
is in METRICS_ALLOWED_CIDRS or it sends METRICS_BEARER_TOKEN.
"""

import functools
import hmac
import ipaddress
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core import health
from core.client_address import Network, parse_networks
from core.exceptions import error_response
from core.middleware import _BothModes
from core.telemetry import metrics
from core.throttling import request_address

LIVEZ, READYZ, METRICS = "/livez", "/readyz", "/metrics"


def livez() -> HttpResponse:
    """The process answers: no I/O at all."""
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


def readyz() -> HttpResponse:
    """200 when every backing service answers, else 503 naming the failing checks."""
    checks = health.cached_checks()
    failing = sorted(name for name, verdict in checks.items() if verdict != "ok")
    body = {"status": "degraded" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    response = HttpResponse(json.dumps(body), content_type="application/json",
                            status=503 if failing else 200)
    if failing:
        response["Retry-After"] = "5"
    return response


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(cidrs)


def metrics_allowed(request: HttpRequest) -> bool:
    """Whether the caller may read /metrics: a configured bearer token, or an allowed address
    (the client's, X-Forwarded-For counting only from TRUSTED_PROXIES)."""
    token = settings.METRICS_BEARER_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(
            sent[7:].strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request_address(request))
    except ValueError:
        return False
    return any(address in network
               for network in _networks(tuple(settings.METRICS_ALLOWED_CIDRS)))


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format, to an allowed caller."""
    if not metrics.enabled():
        return error_response("not_found", "Metrics need prometheus_client installed.", 404)
    if not metrics_allowed(request):
        return error_response("permission_denied", "Metrics are not served to this address; "
                              "see METRICS_ALLOWED_CIDRS and METRICS_BEARER_TOKEN.", 403)
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


def _only_get(request: HttpRequest) -> HttpResponse | None:
    if request.method in ("GET", "HEAD"):
        return None
    response = error_response("method_not_allowed",
                              f'Method "{request.method}" not allowed.', 405)
    response["Allow"] = "GET, HEAD"
    return response


class ProbeMiddleware(_BothModes):
    """Answer the probes and /metrics; pass every other request on untouched."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Sync mode."""
        path = request.path_info
        if path == LIVEZ:
            return _only_get(request) or livez()
        if path == READYZ:
            return _only_get(request) or readyz()
        if path == METRICS:
            return _only_get(request) or metrics_view(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        """Async mode: the checks wait on their own threads, off the event loop."""
        path = request.path_info
        if path == LIVEZ:
            return _only_get(request) or livez()
        if path == READYZ:
            return _only_get(request) or await sync_to_async(readyz, thread_sensitive=False)()
        if path == METRICS:
            return _only_get(request) or await sync_to_async(
                metrics_view, thread_sensitive=False)(request)
        return await self.get_response(request)
