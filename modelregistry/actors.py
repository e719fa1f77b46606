"""Model registry jobs: import a model trained elsewhere (CPU queue)."""

from typing import Any

from modelregistry import import_runner
from modelregistry.imports import IMPORT


@IMPORT.actor(max_retries=0)
def import_model(tenant_id: str, project_id: str, model_id: str, key: str,
                 declaration: dict[str, Any] | None, name: str) -> None:
    """Check, export and record one staged upload (modelregistry.imports)."""
    import_runner.run_import(tenant_id, project_id, model_id, key, declaration, name)
