"""The front door of accounts for the other apps: tenancy, permissions, roles and credentials.

Other apps import accounts through this module, `accounts.contracts` and `accounts.events`.
What it returns as data is a frozen value from `accounts.contracts`, never an ORM row; the
DRF classes (permissions, authentication) and the tenant-scoped managers are handed out as
they are, since other apps' views and models are built on them. HTTP lives in
`accounts.views`.
"""

import uuid
from collections.abc import Collection
from typing import Any

from django.http import HttpRequest

from accounts import signin_limit
from accounts.authentication import (
    BearerTokenAuthentication,
    SessionAuthentication,
    access_for_session_user,
)
from accounts.contracts import MembershipRef, ProjectRef, TenantRef
from accounts.feed_rules import hidden_events, may_read
from accounts.models import Membership, Project, Tenant, User
from accounts.permissions import IsTenantMember, RoleAllows, tenant_access
from accounts.roles import can
from accounts.scoping import TenantScopedManager, TenantScopedQuerySet
from accounts.tokens import digest, new_secret

__all__ = [
    "BearerTokenAuthentication",
    "IsTenantMember",
    "MembershipRef",
    "ProjectRef",
    "RoleAllows",
    "SessionAuthentication",
    "TenantRef",
    "TenantScopedManager",
    "TenantScopedQuerySet",
    "access_for_session_user",
    "can",
    "digest",
    "ensure_tenant",
    "hidden_events",
    "is_member",
    "may_read",
    "memberships_of",
    "new_secret",
    "open_project",
    "signed_out",
    "socket_recheck",
    "socket_roles",
    "tenant",
    "tenant_access",
    "verify_sign_in",
]


def _tenant_ref(row: Tenant) -> TenantRef:
    return TenantRef(id=row.id, name=row.name)


def tenant(tenant_id: uuid.UUID) -> TenantRef | None:
    """The tenant with this id, or None when there is none."""
    row = Tenant.objects.filter(pk=tenant_id).first()
    return _tenant_ref(row) if row is not None else None


def ensure_tenant(tenant_id: uuid.UUID, name: str) -> TenantRef:
    """The tenant with this id, created with `name` when missing (platform-owned tenants)."""
    row, _ = Tenant.objects.get_or_create(id=tenant_id, defaults={"name": name})
    return _tenant_ref(row)


def open_project(tenant_id: uuid.UUID, project_id: object) -> ProjectRef | None:
    """The tenant's project with this id if it exists and is not archived, else None."""
    row = Project.objects.for_tenant(tenant_id).filter(
        pk=project_id, archived_at__isnull=True).first()
    return ProjectRef(id=row.id, tenant_id=row.tenant_id, name=row.name) if row else None


def memberships_of(user_id: object) -> list[MembershipRef]:
    """The tenants a user belongs to with the role held in each, oldest membership first."""
    rows = (Membership.objects.unscoped().filter(user_id=user_id).select_related("tenant")
            .order_by("created_at"))
    return [MembershipRef(tenant_id=m.tenant_id, tenant_name=m.tenant.name, role=m.role)
            for m in rows]


def is_member(tenant_id: uuid.UUID, user_id: object) -> bool:
    """Whether the user belongs to the tenant."""
    return Membership.objects.for_tenant(tenant_id).filter(user_id=user_id).exists()


def verify_sign_in(email: str, password: str, request: HttpRequest | None = None) -> User:
    """The user with these credentials, counted against the per-account failure limit
    (InvalidCredentials, or Throttled while the email is locked)."""
    return signin_limit.verify(email, password, request)


# The live side is loaded on first use: this module is imported while the apps' models load,
# and the websocket machinery (channels, the event hub) has no business there.
def signed_out(user_id: object) -> None:
    """The user signed out of the console: their websockets check their credential now."""
    from accounts import live_access

    live_access.signed_out(user_id)


def socket_recheck(credential: Any) -> Any:
    """Whether what opened a websocket still admits it (`accounts.ws_auth.Recheck`)."""
    from accounts import ws_auth

    return ws_auth.recheck(credential)


def socket_roles(credentials: Collection[Any]) -> dict[Any, str | None]:
    """The role each websocket credential holds now (None: it no longer admits its socket)."""
    from accounts import ws_auth

    return ws_auth.current_roles(credentials)
