"""The worker side of an import (modelregistry.imports): read, check, export, store, record.

Whatever the outcome the staged upload is deleted and the answer left for the request; a refused
upload leaves nothing behind (no artifact, no event).
"""

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.core.files.storage import default_storage

from core import context
from eventlog.aggregates import Aggregate
from modelregistry import api, formats, imports, uploads
from modelregistry.events import ModelImported


class ModelStream(Aggregate):
    stream_type = "model"
    not_found_message = "Model not found."


def _refuse(model_id: str, field: str, message: str) -> None:
    cache.set(imports.result_key(model_id), {"ok": False, "field": field, "message": message},
              imports.RESULT_TTL_S)


def run_import(tenant_id: str, project_id: str, model_id: str, key: str,
               declaration: dict[str, Any] | None, name: str) -> None:
    """Import one staged upload; the answer goes to the cache for the waiting request."""
    from training_runtime.export.imports import ImportRefused, import_model

    work = Path(tempfile.mkdtemp(prefix="model-import-"))
    stored: list[str] = []
    try:
        upload = work / "upload"
        with default_storage.open(key, "rb") as source, open(upload, "wb") as target:
            shutil.copyfileobj(source, target)
        try:
            source_path = upload if declaration is not None else uploads.extract(
                upload, work / "extracted")
            folder = import_model(source_path, work / "artifact", declaration)
        except uploads.UnsafeZip as exc:
            return _refuse(model_id, "file", str(exc))
        except ImportRefused as exc:
            return _refuse(model_id, exc.field, str(exc))
        from training_runtime.export import load_manifest

        manifest = load_manifest(folder)
        artifact_key = api.store_artifact(folder, tenant_id, model_id)
        stored.append(artifact_key)
        model_formats = formats.store(folder, tenant_id, model_id)
        stored += [e["key"] for e in model_formats.values() if "key" in e]
        with context.scope(actor=context.current().actor or "system"):
            ModelStream(tenant_id, model_id).append(ModelImported(
                project=project_id, name=name[:200], scenario=manifest.scenario,
                algorithm=manifest.model_name, labels=list(manifest.labels),
                input_size=list(manifest.input_size), artifact_key=artifact_key,
                formats=model_formats))
        stored = []
        cache.set(imports.result_key(model_id), {"ok": True}, imports.RESULT_TTL_S)
    except Exception as exc:
        _refuse(model_id, "file", f"The import failed: {type(exc).__name__}: {exc}"[:300])
        raise
    finally:
        for leftover in stored:  # a failure after storing: keep nothing
            with contextlib.suppress(Exception):
                default_storage.delete(leftover)
        with contextlib.suppress(Exception):
            default_storage.delete(key)
        shutil.rmtree(work, ignore_errors=True)
