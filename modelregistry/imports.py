"""POST /api/v1/models/: a model trained elsewhere comes in (lineage `imported`).

The web process refuses what it can see without torch (size before reading, the zip's central
directory, the declaration's shape), stages the upload in storage and sends `import_model` to a
CPU worker by name, then waits at most IMPORT_WAIT_S for its answer: the worker reads the weights
(weights only), fits them to the declared architecture, exports every format, stores them and
appends `ModelImported`; or reports the refusal, and nothing is kept. A slower import is a 503
with Retry-After; it finishes in the background and the model appears in the list.
"""

import json
import time
import uuid
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from accounts.api import open_project
from core.broker import CPU_QUEUE
from core.errors import Unavailable, ValidationFailed
from core.tenancy import TenantAccess
from core.work import Work
from modelregistry import uploads

IMPORT = Work("import_model", CPU_QUEUE)
MAX_UPLOAD_BYTES = 2 * 1024**3
IMPORT_WAIT_S = 120.0
RESULT_TTL_S = 3600
POLL_S = 0.1


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def result_key(model_id: object) -> str:
    """Where the worker leaves its answer for the waiting request."""
    return f"modelregistry:import:{model_id}"


def staging_key(tenant_id: object, model_id: object) -> str:
    """Where the upload waits for the worker (deleted once it answered)."""
    return f"imports/{tenant_id}/{model_id}/upload"


def _declaration(text: str | None) -> dict[str, Any]:
    """The `manifest` field of a state dict upload, as an object (checked fully by the worker)."""
    if not text:
        raise _invalid("manifest", "A state dict needs a manifest: {\"scenario\", "
                                   "\"algorithm\", \"labels\", \"input_size\"}.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid("manifest", f"The manifest is not JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise _invalid("manifest", "The manifest must be a JSON object.")
    return value


def start(access: TenantAccess, values: dict[str, Any], upload: UploadedFile) -> str:
    """Check, stage and import an upload; the new model's id, or a 400 naming the problem."""
    tenant_id = access.tenant_id
    project = open_project(tenant_id, values["project"])
    if project is None:
        raise _invalid("project", "No such project in this tenant.")
    if upload.size > MAX_UPLOAD_BYTES:
        raise _invalid("file", f"The file is {upload.size} bytes; at most {MAX_UPLOAD_BYTES}.")
    head = upload.read(4)
    upload.seek(0)
    declaration = None
    if head[:2] == b"PK" and values.get("manifest") in (None, ""):
        path = Path(upload.temporary_file_path()) if hasattr(
            upload, "temporary_file_path") else None
        try:
            uploads.check(path if path is not None else upload.file)
        except uploads.UnsafeZip as exc:
            raise _invalid("file", str(exc)) from None
        upload.seek(0)
    else:
        declaration = _declaration(values.get("manifest"))
    model_id = str(uuid.uuid4())
    key = staging_key(tenant_id, model_id)
    default_storage.save(key, upload)
    IMPORT.send(str(tenant_id), str(project.id), model_id, key, declaration,
                values.get("name") or upload.name or "imported model")
    return wait(model_id)


def wait(model_id: str, timeout: float | None = None) -> str:
    """The model id once the worker accepted it; its 400, or a 503 past the bound."""
    deadline = time.monotonic() + (IMPORT_WAIT_S if timeout is None else timeout)
    while time.monotonic() < deadline:
        answer = cache.get(result_key(model_id))
        if answer is not None:
            if answer.get("ok"):
                return model_id
            raise _invalid(answer.get("field") or "file", answer["message"])
        time.sleep(POLL_S)
    raise Unavailable("The import is still running; it finishes in the background. List "
                      "/api/v1/models/ in a minute.", headers={"Retry-After": "30"})
