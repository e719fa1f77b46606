"""Service prediction keys: `Authorization: Bearer svk_...` reaches one service's predict route."""

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.api import digest
from core.tenancy import TenantAccess
from serving.commands import KEY_PREFIX
from serving.models import ServiceKey

SERVICE_ROLE = "service"
NOBODY = uuid.UUID(int=0)


@dataclass(frozen=True)
class ServiceKeyAccess(TenantAccess):
    """A request made with a service's key: it may predict on that service only."""

    service_id: uuid.UUID | None = None

    @property
    def actor(self) -> str:
        """Who acted, for event metadata."""
        return f"service-key:{self.service_id}"


class ServiceKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer svk_...`; any other bearer token is left to the next class."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ServiceKeyAccess] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(KEY_PREFIX):
            return None
        found = ServiceKey.objects.unscoped().filter(digest=digest(secret)).values_list(
            "tenant_id", "service_id")[:1]
        if not found:
            raise AuthenticationFailed("The service key is unknown or was replaced.")
        tenant_id, service_id = found[0]
        return AnonymousUser(), ServiceKeyAccess(tenant_id=tenant_id, user_id=NOBODY,
                                                 role=SERVICE_ROLE, service_id=service_id)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
