"""The front door of accounts for the other apps: tenancy, permissions, roles and credentials.

Other apps import accounts through this module, `accounts.contracts` and `accounts.events`.
What it returns as data is a frozen value from `accounts.contracts`, never an ORM row; the
DRF classes (permissions, authentication) and the tenant-scoped managers are handed out as
they are, since other apps' views and models are built on them. HTTP lives in
`accounts.views`.
"""

import uuid

from accounts.authentication import (
    BearerTokenAuthentication,
    SessionAuthentication,
    access_for_session_user,
)
from accounts.contracts import ProjectRef, TenantRef
from accounts.feed_rules import hidden_events, may_read
from accounts.models import Project, Tenant
from accounts.permissions import IsTenantMember, RoleAllows, tenant_access
from accounts.roles import can
from accounts.scoping import TenantScopedManager, TenantScopedQuerySet
from accounts.tokens import digest, new_secret

__all__ = [
    "BearerTokenAuthentication",
    "IsTenantMember",
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
    "may_read",
    "new_secret",
    "open_project",
    "tenant",
    "tenant_access",
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
