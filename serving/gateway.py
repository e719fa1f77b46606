"""The prediction route, asynchronous: a request holds no thread while an instance works.

    view(ServicePredictView, initkwargs)   # the route's view in the URLconf (Django's chain)
    PredictionGateway()                     # the same route as a lean ASGI app: config.asgi
                                            # sends Bearer-authenticated predictions there

A prediction is authenticated, checked and queued by `ServicePredictView.accept`: in the lean
app, in a small thread pool (SERVING_ACCEPT_THREADS) whose threads borrow a connection from
the process's pool for each check (without a pool, keep theirs as CONN_MAX_AGE allows); in
Django's chain, on the request's thread. The event loop then awaits the instance's reply, which
the transport hands over from whatever thread gets it. Under ASGI, Django's chain gives every
request its own new thread (bench/serving.py measured about 12 ms of CPU a request on that
path).

The lean app keeps what matters to a machine client: the request id, the body limit, the
security headers and the error shape. It skips sessions, CSRF and static files, which is why
only requests with an `Authorization: Bearer` header are sent to it; a browser's session
request takes Django's full chain to the same view.
"""

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve

from core import crashes
from core.errors import (
    ApiError,
    InternalError,
    PayloadTooLarge,
    ServiceNotRunning,
    Unavailable,
    ValidationFailed,
)
from core.exceptions import error_response
from core.middleware import RequestIdMiddleware, RequestSizeLimitMiddleware
from core.telemetry import metrics
from core.telemetry import web as telemetry
from serving import monitoring
from serving.transport import transport

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _accept_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(settings.SERVING_ACCEPT_THREADS,
                                       thread_name_prefix="serving-accept")
        return _pool


def _accept(view_class: type, initkwargs: dict[str, Any], request: HttpRequest, pk: str,
            request_id: str) -> tuple[Any, HttpResponse | None]:
    return view_class(**initkwargs).accept(request, pk, request_id)


def _pooled_accept(*args: Any) -> tuple[Any, HttpResponse | None]:
    # request_started/finished for a pool thread: the connection goes back to the process's
    # pool after the check (without a pool: kept while CONN_MAX_AGE allows, never a broken one)
    close_old_connections()
    try:
        return _accept(*args)
    finally:
        close_old_connections()


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future, body: dict) -> None:
    def settle() -> None:
        if not future.done():
            future.set_result(body)

    with contextlib.suppress(RuntimeError):  # a closed loop: its caller is gone
        loop.call_soon_threadsafe(settle)


def _error(exc: ApiError) -> JsonResponse:
    response = error_response(exc.code, exc.message, exc.status, exc.fields)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _answer_of(reply: dict[str, Any]) -> HttpResponse:
    """The HTTP answer to an instance's reply."""
    if reply["ok"]:
        return JsonResponse({"predictions": reply["predictions"], "model": reply["model"]})
    if reply["code"] == "invalid_image":
        return _error(ValidationFailed(reply["message"], fields={"image": [reply["message"]]}))
    if reply["code"] == "image_too_large":
        return _error(PayloadTooLarge(reply["message"], fields={"image": [reply["message"]]}))
    if reply["code"] == "service_stopped":
        return _error(ServiceNotRunning("The service stopped; it answers predictions while "
                                        "running."))
    return _error(InternalError(reply["message"]))


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "throttled" if status == 429 else "error"


async def _in_pool(*args: Any) -> tuple[Any, HttpResponse | None]:
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the request id, for logs and events
    return await loop.run_in_executor(_accept_pool(), functools.partial(
        context.run, _pooled_accept, *args))


# Django's chain (a browser's session, the test client): like any async view's ORM work, on the
# request's own thread, which under the test client is the test's (it sees the test's rows).
_on_request_thread = sync_to_async(_accept)


async def answer(view_class: type, request: HttpRequest, pk: object,
                 initkwargs: dict[str, Any] | None = None, *, pooled: bool = False
                 ) -> HttpResponse:
    """Check and queue the prediction off the event loop (in the pool when `pooled`, else on
    the request's thread), then await the instance's reply."""
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    reply: asyncio.Future = loop.create_future()
    request_id = uuid.uuid4().hex
    queue = transport()
    # registered before the request is queued: a fast reply finds its waiter
    queue.expect(request_id, functools.partial(_settle, loop, reply))
    try:
        accept = _in_pool if pooled else _on_request_thread
        service, refused = await accept(view_class, initkwargs or {}, request, str(pk),
                                        request_id)
        if refused is not None:
            response = refused
        else:
            try:
                response = _answer_of(await asyncio.wait_for(
                    reply, settings.SERVING_REQUEST_TIMEOUT_S))
            except TimeoutError:
                response = _error(Unavailable("No instance answered in time; retry shortly.",
                                              headers={"Retry-After": "5"}))
    finally:
        queue.forget(request_id)
    if service is not None:
        elapsed = time.monotonic() - started
        outcome = _outcome(response.status_code)
        monitoring.record(service.tenant_id, service.id, elapsed * 1000, outcome)
        metrics.PREDICTION_LATENCY.labels(str(service.id), outcome).observe(elapsed)
    return response


def view(view_class: type, initkwargs: dict[str, Any], *, pooled: bool = False) -> Any:
    """The route's asynchronous view, marked as Django and DRF mark theirs (`view_class`,
    `cls`; CSRF exempt: the view's SessionAuthentication checks CSRF itself)."""

    async def predict(request: HttpRequest, pk: object) -> HttpResponse:
        if request.method != "POST":
            response = error_response("method_not_allowed",
                                      f'Method "{request.method}" not allowed.', 405)
            response["Allow"] = "POST"
            return response
        return await answer(view_class, request, pk, initkwargs, pooled=pooled)

    predict.cls = predict.view_class = view_class
    predict.initkwargs = predict.view_initkwargs = initkwargs
    predict.csrf_exempt = True
    return predict


# The route template the gateway serves, as /metrics labels Django's requests to it.
PREDICT_ROUTE = "/api/v1/services/<uuid:pk>/predict/"


def predicted_service(path: str) -> str | None:
    """The service id when the URLconf routes `path` to the prediction view, else None."""
    routed = _routed(settings.ROOT_URLCONF, path)
    return routed[0] if routed is not None else None


# A prediction's path is resolved twice (config.asgi's routing, then the gateway), and resolving
# walks the URLconf pattern by pattern: about 0.4 ms of CPU each time on this project's routes.
# Keyed by the URLconf too, so that override_settings(ROOT_URLCONF=...) is never answered stale.
@functools.lru_cache(maxsize=4096)
def _routed(urlconf: str, path: str) -> tuple[str, type] | None:
    """The service id and the view class when `path` reaches a view the gateway serves (one
    that says so with `served_by_gateway`): the gateway knows the route, not the view."""
    try:
        match = resolve(path, urlconf)
    except Resolver404:
        return None
    view_class = getattr(match.func, "view_class", None)
    if not getattr(view_class, "served_by_gateway", False):
        return None
    return str(match.kwargs["pk"]), view_class


@functools.cache
def _pooled_view(view_class: type) -> Any:
    return view(view_class, {}, pooled=True)


def handles(scope: dict[str, Any]) -> bool:
    """Whether an ASGI request is a Bearer-authenticated prediction (the lean app's share)."""
    return (scope["type"] == "http" and scope.get("method") == "POST"
            and any(name == b"authorization" and value[:7].lower() == b"bearer "
                    for name, value in scope.get("headers", ()))
            and predicted_service(scope.get("path", "")) is not None)


class PredictionGateway(ASGIHandler):
    """Django's ASGI handler for the prediction route, with a lean asynchronous chain."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's request and response, without its per-request thread: ASGIHandler sends
        request_started/finished to their sync receivers (connection upkeep) on a new thread
        for every request, and this path's database work runs in the pool, which keeps its own
        connections. A client that leaves early is not listened for: its reply is dropped."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with contextlib.closing(body_file):
            request, refusal = self.create_request(scope, body_file)
            response = refusal or await self.get_response_async(request)
            await self.send_response(response, send)
            for close in response._resource_closers:  # what response.close() does, but the
                close()                               # request_finished signal

    def load_middleware(self, is_async: bool = False) -> None:
        """The request id and body limit around the view; security headers on the answer."""
        self._view_middleware, self._template_response_middleware = [], []
        self._exception_middleware = []
        security = SecurityMiddleware(lambda request: None)

        async def respond(request: HttpRequest) -> HttpResponse:
            redirect = security.process_request(request)
            if redirect is not None:
                return redirect
            routed = _routed(settings.ROOT_URLCONF, request.path_info)
            response = (await _pooled_view(routed[1])(request, routed[0]) if routed is not None
                        else error_response("not_found", "Not found.", 404))
            return security.process_response(request, response)

        # a crash answers in the API's error shape, with DEBUG on too (no debug page)
        chain = convert_exception_to_response(crashes.guarded(respond))
        self._middleware_chain = RequestIdMiddleware(telemetry.wrap(
            RequestSizeLimitMiddleware(chain), route=PREDICT_ROUTE))

