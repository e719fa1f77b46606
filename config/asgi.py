"""ASGI entry point: Django for HTTP, Channels for websockets, and the prediction gateway for
Bearer-authenticated predictions (serving.gateway: the same view without the browser's
middleware, asynchronous end to end)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django_http = get_asgi_application()  # sets Django up before the imports below touch models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.ws_auth import TenantAuthMiddlewareStack  # noqa: E402
from core.asgi_limits import BodyLimitGuard  # noqa: E402
from eventlog.consumers import EventStreamConsumer  # noqa: E402
from serving import gateway  # noqa: E402

websocket_routes = [path("ws/v1/events/", EventStreamConsumer.as_asgi())]
predictions = gateway.PredictionGateway()


async def http(scope: dict, receive: object, send: object) -> None:
    """Predictions with a Bearer token to the gateway, everything else to Django."""
    app = predictions if gateway.handles(scope) else django_http
    await app(scope, receive, send)


application = ProtocolTypeRouter({
    "http": BodyLimitGuard(http),  # before either app reads a byte of the body
    "websocket": TenantAuthMiddlewareStack(URLRouter(websocket_routes)),
})
