"""ASGI entry point: Django for HTTP, Channels for websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django_http = get_asgi_application()  # sets Django up before the imports below touch models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.ws_auth import TenantAuthMiddlewareStack  # noqa: E402
from eventlog.consumers import EventStreamConsumer  # noqa: E402

websocket_routes = [path("ws/v1/events/", EventStreamConsumer.as_asgi())]

application = ProtocolTypeRouter({
    "http": django_http,
    "websocket": TenantAuthMiddlewareStack(URLRouter(websocket_routes)),
})
