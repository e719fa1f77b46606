"""DRF authentication: bearer tokens and browser sessions, both resolving to a TenantAccess."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.models import ApiToken, Membership, User
from accounts.tokens import digest
from core.tenancy import TenantAccess

LAST_USED_RESOLUTION = timedelta(minutes=1)


def access_for_token(secret: str) -> tuple[User, TenantAccess] | None:
    """The user and tenant a token secret stands for, or None when unknown, revoked or expired."""
    token = (ApiToken.objects.unscoped().select_related("user")
             .filter(digest=digest(secret), revoked_at__isnull=True).first())
    now = timezone.now()
    if token is None or not token.user.is_active or (token.expires_at and token.expires_at <= now):
        return None
    membership = (Membership.objects.for_tenant(token.tenant_id)
                  .filter(user_id=token.user_id).first())
    if membership is None:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Coarse on purpose: one write per token per minute, not one per request.
        ApiToken.objects.unscoped().filter(pk=token.pk).update(last_used_at=now)
    return token.user, TenantAccess(tenant_id=token.tenant_id, user_id=token.user_id,
                                    role=membership.role, token_id=token.id)


def access_for_session_user(user: User, tenant_id: object = None) -> TenantAccess | None:
    """A session user's access in the tenant chosen in the session (default: the first one)."""
    memberships = Membership.objects.for_tenant(tenant_id) if tenant_id else (
        Membership.objects.unscoped())
    membership = memberships.filter(user_id=user.pk).order_by("created_at").first()
    if membership is None:
        return None
    return TenantAccess(tenant_id=membership.tenant_id, user_id=user.pk, role=membership.role)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[User, TenantAccess] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None
        secret = secret.strip()
        if not secret:
            raise AuthenticationFailed("The Authorization header has no token.")
        result = access_for_token(secret)
        if result is None:
            raise AuthenticationFailed("The token is unknown, revoked or expired.")
        return result

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser session (console), with CSRF enforced as DRF does."""

    def authenticate(self, request: Request) -> tuple[User, TenantAccess] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        access = access_for_session_user(user, request._request.session.get("tenant_id"))
        if access is None:
            return None
        return user, access
