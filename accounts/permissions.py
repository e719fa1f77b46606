"""DRF permissions from the role table: views name their resource; methods map to actions."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.roles import METHOD_ACTIONS, can
from core.tenancy import TenantAccess


def tenant_access(request: Request) -> TenantAccess:
    """The caller's tenant access (authentication has already required it)."""
    return request.auth


class IsTenantMember(BasePermission):
    """Authenticated with a token or session that resolves to a tenant."""

    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, TenantAccess)


class RoleAllows(IsTenantMember):
    """The role table allows this method on the view's `resource`.

    On routes of one object of a generic view the check waits for the object lookup, so that
    another tenant's object answers 404 before any 403 could hint that it exists. Views
    without an object lookup are checked at once (a 403 for any id reveals nothing).
    """

    def _allowed(self, request: Request, view: object) -> bool:
        action = getattr(view, "action_names", {}).get(request.method) or METHOD_ACTIONS.get(
            request.method, "")
        return can(request.auth.role, view.resource, action)

    def has_permission(self, request: Request, view: object) -> bool:
        if not super().has_permission(request, view):
            return False
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
        looks_up_object = hasattr(view, "get_object") and lookup and view.kwargs.get(lookup)
        if looks_up_object:
            return True
        return self._allowed(request, view)

    def has_object_permission(self, request: Request, view: object, obj: object) -> bool:
        return self._allowed(request, view)
