"""GET /api/v1/health/: whether each part the platform leans on answers."""

import logging
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.files.storage import default_storage
from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import broker

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    if not isinstance(layer, InMemoryChannelLayer):
        async_to_sync(layer.group_send)("health", {"type": "health.ping"})


def check_storage() -> None:
    if getattr(default_storage, "bucket_name", None):  # S3: the bucket itself must answer
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
    else:
        default_storage.exists("health/probe")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": broker.check,
    "storage": check_storage,
}


def run_checks() -> dict[str, str]:
    """Each check's verdict: "ok" or "error: <reason>"."""
    verdicts = {}
    for name, check in CHECKS.items():
        try:
            check()
            verdicts[name] = "ok"
        except Exception as exc:  # a health check reports failures, it does not raise them
            logger.warning("health check %s failed", name, exc_info=True)
            verdicts[name] = f"error: {type(exc).__name__}"
    return verdicts


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        checks = run_checks()
        status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
        return Response({"status": status, "checks": checks})
