"""Tenant-scoped querysets: reading rows without naming a tenant is an error, not a leak.

    Project.objects.for_tenant(tenant_id).get(pk=...)   # fine
    Project.objects.filter(pk=...)                      # raises TenantScopeRequired on use
    Project.objects.unscoped()                          # explicit, for projections and staff

Django's own machinery (saving, deleting, related lookups) goes through `_base_manager`,
which stays a plain manager.
"""

from typing import Any, Self

from django.db import models


class TenantScopeRequired(RuntimeError):
    pass


class TenantScopedQuerySet(models.QuerySet):
    tenant_field = "tenant_id"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._tenant_scoped = False

    def for_tenant(self, tenant_id: object) -> Self:
        """Rows of one tenant only."""
        qs = self.filter(**{self.tenant_field: tenant_id})
        qs._tenant_scoped = True
        return qs

    def unscoped(self) -> Self:
        """All tenants' rows, on purpose (projections, rebuilds, staff tools)."""
        qs = self._chain()
        qs._tenant_scoped = True
        return qs

    def _clone(self) -> Self:
        clone = super()._clone()
        clone._tenant_scoped = self._tenant_scoped
        return clone

    def _require_scope(self) -> None:
        if not self._tenant_scoped:
            raise TenantScopeRequired(
                f"{self.model.__name__} rows must be read through for_tenant() or unscoped()."
            )

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._require_scope()
        super()._fetch_all()

    def iterator(self, *args: Any, **kwargs: Any) -> Any:
        self._require_scope()
        return super().iterator(*args, **kwargs)

    def count(self) -> int:
        self._require_scope()
        return super().count()

    def exists(self) -> bool:
        self._require_scope()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict:
        self._require_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._require_scope()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._require_scope()
        return super().delete()


TenantScopedManager = models.Manager.from_queryset(TenantScopedQuerySet)
