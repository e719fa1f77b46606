"""Websocket authentication: header token, single-use ticket, or session cookie (Origin-checked).

Sets `scope["tenant_id"]`, `scope["access"]` and `scope["credential"]` when a credential is
valid; consumers refuse the handshake otherwise. A socket outlives its handshake, so the
consumer checks its credential again (`recheck`) every WS_AUTH_RECHECK_S seconds and whenever
it is told that the user's access changed, and closes with one of the codes below.
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from importlib import import_module
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.authentication import access_for_session_user, access_for_token
from accounts.commands import redeem_websocket_ticket
from accounts.models import ApiToken, Membership
from core.tenancy import TenantAccess

# Application close codes (documented in README, "Live events"): the client should not simply
# reconnect with the same credential, which would be refused.
CLOSE_CREDENTIAL_REVOKED = 4401  # token revoked or expired, session ended, user deactivated
CLOSE_NOT_A_MEMBER = 4403  # removed from the tenant, or the role may no longer read events


@dataclass(frozen=True)
class SocketCredential:
    """What opened a socket, kept to check it again while the socket stays open.

    A ticket-opened socket carries the token or session that issued the ticket: revoking that
    token or ending that session closes it like a socket opened with it directly.
    """

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    token_id: uuid.UUID | None = None
    session_key: str = ""


class Recheck(NamedTuple):
    """The access a credential still stands for, or the close code saying why it stands for none."""

    access: TenantAccess | None
    close_code: int = 0


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


def _session_user(session: Any) -> Any:
    """The active user a session is signed in as (None: signed out, or password changed)."""
    user_id = session.get(SESSION_KEY)
    if not user_id or BACKEND_SESSION_KEY not in session:
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(session.get(HASH_SESSION_KEY, ""),
                                                 user.get_session_auth_hash()):
        return None
    return user


def _session_access(session: Any) -> TenantAccess | None:
    user = _session_user(session)
    return access_for_session_user(user, session.get("tenant_id")) if user else None


def _credential(access: TenantAccess | None, session_key: str = "") -> SocketCredential | None:
    if access is None:
        return None
    return SocketCredential(tenant_id=access.tenant_id, user_id=access.user_id,
                            token_id=access.token_id, session_key=session_key or "")


def _resolve(scope: dict) -> tuple[TenantAccess, SocketCredential] | None:
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        result = access_for_token(secret.strip())
        access = result[1] if result else None
        credential = _credential(access)
    elif ticket := parse_qs(scope.get("query_string", b"").decode()).get("ticket"):
        redeemed = redeem_websocket_ticket(ticket[0])
        access = redeemed[0] if redeemed else None
        credential = _credential(access, redeemed[1] if redeemed else "")
        if credential is not None and recheck(credential).access is None:
            return None  # the token or session that asked for the ticket ended since
    else:
        session = scope.get("session")
        if session is None or not origin_allowed(scope):
            return None
        access = _session_access(session)
        credential = _credential(access, session.session_key)
    return (access, credential) if access is not None and credential is not None else None


@database_sync_to_async
def resolve_access(scope: dict) -> tuple[TenantAccess, SocketCredential] | None:
    """The tenant access the handshake's credentials stand for, and the credential, if any."""
    return _resolve(scope)


def _session_alive(session_key: str, user_id: uuid.UUID) -> bool:
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = _session_user(store)  # a flushed (signed-out) session loads empty
    return user is not None and user.pk == user_id


def recheck(credential: SocketCredential) -> Recheck:
    """Whether the credential still holds: the member's current access, or why not (indexed
    look-ups by key, a few per check)."""
    membership = (Membership.objects.for_tenant(credential.tenant_id)
                  .filter(user_id=credential.user_id).select_related("user").first())
    if membership is None:
        return Recheck(None, CLOSE_NOT_A_MEMBER)
    if not membership.user.is_active:
        return Recheck(None, CLOSE_CREDENTIAL_REVOKED)
    if credential.token_id is not None:
        now = timezone.now()
        valid = (ApiToken.objects.for_tenant(credential.tenant_id)
                 .filter(pk=credential.token_id, user_id=credential.user_id,
                         revoked_at__isnull=True)
                 .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exists())
        if not valid:
            return Recheck(None, CLOSE_CREDENTIAL_REVOKED)
    if credential.session_key and not _session_alive(credential.session_key,
                                                     credential.user_id):
        return Recheck(None, CLOSE_CREDENTIAL_REVOKED)
    return Recheck(TenantAccess(tenant_id=credential.tenant_id, user_id=credential.user_id,
                                role=membership.role, token_id=credential.token_id))


def current_roles(credentials: Collection[SocketCredential]) -> dict[SocketCredential, str | None]:
    """For many open sockets at once: each credential's member role now, or None when it no
    longer holds. Two queries whatever their number, plus one per session-opened socket."""
    pairs = {(c.tenant_id, c.user_id) for c in credentials}
    roles = {
        (tenant_id, user_id): role
        for tenant_id, user_id, role in Membership.objects.unscoped().filter(
            tenant_id__in={tenant for tenant, _ in pairs},
            user_id__in={user for _, user in pairs}, user__is_active=True,
        ).values_list("tenant_id", "user_id", "role")
    }
    token_ids = {c.token_id for c in credentials if c.token_id is not None}
    live_tokens = set(
        ApiToken.objects.unscoped().filter(pk__in=token_ids, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .values_list("pk", flat=True)) if token_ids else set()
    sessions = {(c.session_key, c.user_id) for c in credentials if c.session_key}
    live_sessions = {pair for pair in sessions if _session_alive(*pair)}
    result: dict[SocketCredential, str | None] = {}
    for c in credentials:
        holds = ((c.token_id is None or c.token_id in live_tokens)
                 and (not c.session_key or (c.session_key, c.user_id) in live_sessions))
        result[c] = roles.get((c.tenant_id, c.user_id)) if holds else None
    return result


class TenantAuthMiddleware:
    """ASGI middleware resolving the caller's tenant for websocket consumers."""

    def __init__(self, inner: Any):
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        resolved = await resolve_access(scope)
        access, credential = resolved if resolved else (None, None)
        scope = {**scope, "access": access, "credential": credential,
                 "tenant_id": access.tenant_id if access else None}
        return await self.inner(scope, receive, send)


def TenantAuthMiddlewareStack(inner: Any) -> Any:
    """Cookies and sessions, then tenant resolution."""
    return CookieMiddleware(SessionMiddleware(TenantAuthMiddleware(inner)))
