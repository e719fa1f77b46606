"""Websocket authentication: header token, single-use ticket, or session cookie (Origin-checked).

Sets `scope["tenant_id"]` (and `scope["access"]`) when a credential is valid; consumers refuse
the handshake otherwise.
"""

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from accounts.authentication import access_for_session_user, access_for_token
from accounts.commands import redeem_websocket_ticket
from core.tenancy import TenantAccess


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def origin_allowed(scope: dict) -> bool:
    """A cookie-authenticated socket must come from our own host or an allowed origin."""
    origin = _header(scope, b"origin")
    if not origin:
        return False
    if origin in settings.WS_ALLOWED_ORIGINS:
        return True
    return urlparse(origin).netloc == _header(scope, b"host")


def _session_access(session: Any) -> TenantAccess | None:
    user_id = session.get(SESSION_KEY)
    if not user_id or BACKEND_SESSION_KEY not in session:
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(session.get(HASH_SESSION_KEY, ""),
                                                 user.get_session_auth_hash()):
        return None
    return access_for_session_user(user, session.get("tenant_id"))


@database_sync_to_async
def resolve_access(scope: dict) -> TenantAccess | None:
    """The tenant access the handshake's credentials stand for, if any."""
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        result = access_for_token(secret.strip())
        return result[1] if result else None
    ticket = parse_qs(scope.get("query_string", b"").decode()).get("ticket")
    if ticket:
        return redeem_websocket_ticket(ticket[0])
    session = scope.get("session")
    if session is not None and origin_allowed(scope):
        return _session_access(session)
    return None


class TenantAuthMiddleware:
    """ASGI middleware resolving the caller's tenant for websocket consumers."""

    def __init__(self, inner: Any):
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        access = await resolve_access(scope)
        scope = {**scope, "access": access, "tenant_id": access.tenant_id if access else None}
        return await self.inner(scope, receive, send)


def TenantAuthMiddlewareStack(inner: Any) -> Any:
    """Cookies and sessions, then tenant resolution."""
    return CookieMiddleware(SessionMiddleware(TenantAuthMiddleware(inner)))
