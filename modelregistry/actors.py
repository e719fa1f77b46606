"""Model registry jobs: import a model trained elsewhere (CPU queue)."""

from typing import Any

from modelregistry import checks, import_runner
from modelregistry.checks import CHECK
from modelregistry.imports import IMPORT


@IMPORT.actor(max_retries=0)
def import_model(tenant_id: str, project_id: str, model_id: str, key: str,
                 declaration: dict[str, Any] | None, name: str) -> None:
    """Check, export and record one staged upload (modelregistry.imports)."""
    import_runner.run_import(tenant_id, project_id, model_id, key, declaration, name)


@CHECK.actor(max_retries=0, time_limit=5 * 60 * 1000)
def check_model(model_id: str, key: str, check_id: str, top_k: int) -> None:
    """One image through a model for POST /models/{id}/check/ (modelregistry.checks)."""
    checks.run_check(model_id, key, check_id, top_k)
