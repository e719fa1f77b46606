"""Whether each part the platform leans on answers: GET /api/v1/health/ and the /readyz probe.

Each check runs on a thread of its own that keeps its connection between runs (the broker's,
Redis's, S3's HTTP pool; the database connection goes back to the pool or stays open as
CONN_MAX_AGE says), under READINESS_CHECK_TIMEOUT_S. The verdicts are kept READINESS_CACHE_S
seconds: probes every second from several places cost one round of checks.
"""

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.signals import setting_changed
from django.db import connection
from dramatiq.brokers.stub import StubBroker
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

# Clients kept by the check threads, by what they reach (a changed setting gets a new one).
_kept: dict[tuple, Any] = {}


def _timeout() -> float:
    return float(getattr(settings, "READINESS_CHECK_TIMEOUT_S", 2.0))


def check_database() -> None:
    """Raise when the database does not answer SELECT 1."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        # Pooled (CONN_MAX_AGE 0): back to the pool; otherwise kept for CONN_MAX_AGE.
        connection.close_if_unusable_or_obsolete()


def _redis_client(url: str) -> Any:
    import redis

    key = ("redis", url)
    if key not in _kept:
        _kept[key] = redis.Redis.from_url(url, socket_timeout=_timeout(),
                                          socket_connect_timeout=_timeout())
    return _kept[key]


def check_channel_layer() -> None:
    """Raise when the channel layer's Redis servers do not answer (in-memory: always fine)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    if isinstance(layer, InMemoryChannelLayer):
        return
    hosts = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts") or []
    for host in hosts:  # the layer's own connections live per event loop: ping its servers
        url = host if isinstance(host, str) else host.get("address", "")
        _redis_client(url).ping()


def _rabbitmq_ping(url: str) -> None:
    import pika

    key = ("amqp", url)
    kept = _kept.get(key)
    if kept is not None and kept.is_open:
        try:
            kept.process_data_events(time_limit=0)  # a dead server raises here
            return
        except Exception:
            _kept.pop(key, None)
    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = _timeout()
    params.stack_timeout = _timeout()
    _kept[key] = pika.BlockingConnection(params)


def check_broker() -> None:
    """Raise when the broker does not answer."""
    broker = dramatiq.get_broker()
    if isinstance(broker, StubBroker):
        return
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    if isinstance(broker, RabbitmqBroker):
        _rabbitmq_ping(settings.DRAMATIQ_BROKER_URL)
        return
    broker.client.ping()


def _s3_client(storage: Any) -> Any:
    from botocore.config import Config

    key = ("s3", storage.endpoint_url, storage.bucket_name, storage.access_key)
    if key not in _kept:
        config = Config(connect_timeout=_timeout(), read_timeout=_timeout(),
                        retries={"max_attempts": 1})
        if storage.client_config is not None:
            config = storage.client_config.merge(config)
        _kept[key] = storage._create_session().client(
            "s3", region_name=storage.region_name, use_ssl=storage.use_ssl,
            endpoint_url=storage.endpoint_url, config=config, verify=storage.verify)
    return _kept[key]


def check_storage() -> None:
    """Raise when the bucket (S3) or the media folder (local disk) cannot be reached."""
    if getattr(default_storage, "bucket_name", None):  # S3: the bucket itself must answer
        _s3_client(default_storage).head_bucket(Bucket=default_storage.bucket_name)
    else:
        default_storage.exists("health/probe")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "storage": check_storage,
}


class _Runner:
    """One thread for one check: its connections stay with it, and a check still hanging from
    an earlier round is waited on again rather than started twice."""

    def __init__(self, name: str):
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"check-{name}")
        self.running: concurrent.futures.Future | None = None

    def start(self, check: Callable[[], None]) -> concurrent.futures.Future:
        if self.running is None or self.running.done():
            self.running = self.pool.submit(check)
        return self.running


_runners: dict[str, _Runner] = {}
_lock = threading.Lock()
_cached: tuple[float, tuple, dict[str, str]] | None = None


def _verdict(name: str, future: concurrent.futures.Future, deadline: float) -> str:
    try:
        future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        logger.warning("health check %s gave no answer in %ss", name, _timeout())
        return "error: timeout"
    except Exception as exc:  # a health check reports failures, it does not raise them
        logger.warning("health check %s failed: %s", name, exc)
        return f"error: {type(exc).__name__}"
    return "ok"


def run_checks() -> dict[str, str]:
    """Each check's verdict now: "ok" or "error: <reason>" (all run at once, each bounded)."""
    started = {}
    for name, check in CHECKS.items():
        runner = _runners.setdefault(name, _Runner(name))
        started[name] = runner.start(check)
    deadline = time.monotonic() + _timeout()
    return {name: _verdict(name, future, deadline) for name, future in started.items()}


def cached_checks() -> dict[str, str]:
    """run_checks()'s verdicts, reused for READINESS_CACHE_S seconds."""
    global _cached
    ttl = float(getattr(settings, "READINESS_CACHE_S", 1.0))
    # Another set of checks or another broker (tests swap them) is another answer.
    key = (tuple(CHECKS.items()), id(dramatiq.get_broker()))
    with _lock:  # concurrent probes wait for one round rather than start their own
        now = time.monotonic()
        if _cached is not None and _cached[1] == key and now - _cached[0] < ttl:
            return dict(_cached[2])
        verdicts = run_checks()
        _cached = (time.monotonic(), key, verdicts)
        return dict(verdicts)


def forget(**kwargs: object) -> None:
    """Drop the kept verdicts and clients (a setting changed: they may be another server's)."""
    global _cached
    _cached = None
    _kept.clear()


setting_changed.connect(forget)


def healthy(verdicts: dict[str, str]) -> bool:
    """Whether every check passed."""
    return all(value == "ok" for value in verdicts.values())


class HealthOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=("ok", "degraded"))
    checks = serializers.DictField(child=serializers.CharField(),
                                   help_text="Per dependency (database, ...): ok or why not.")


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: HealthOut})
    def get(self, request: Request) -> Response:
        checks = cached_checks()
        return Response({"status": "ok" if healthy(checks) else "degraded", "checks": checks})
