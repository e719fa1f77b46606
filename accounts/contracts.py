"""What accounts hands other apps: plain frozen values, never ORM rows."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class TenantRef:
    """A tenant: its id and name."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class ProjectRef:
    """An open (not archived) project of a tenant."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class MembershipRef:
    """A user's place in a tenant: the tenant and the role held there."""

    tenant_id: uuid.UUID
    tenant_name: str
    role: str
