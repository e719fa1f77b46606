"""POST /api/v1/models/{id}/check/: one image through the model, without a service.

The image is staged in storage and `check_model` runs on a CPU worker (sent by name, core.work);
the request waits at most CHECK_WAIT_S for the predictions, else 503 with Retry-After. Nothing is
billed or frozen and no service is started: it is a quick look, not an API for traffic.
"""

import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

from core.broker import CPU_QUEUE
from core.errors import NotFound, Unavailable, ValidationFailed
from core.work import Work
from modelregistry.models import TrainedModel

CHECK = Work("check_model", CPU_QUEUE)
CHECK_WAIT_S = 30.0
RESULT_TTL_S = 600
POLL_S = 0.05


def result_key(check_id: object) -> str:
    """Where the worker leaves the predictions (or the refusal) of one check."""
    return f"modelregistry:check:{check_id}"


def staging_key(tenant_id: object, check_id: object) -> str:
    """Where the image waits for the worker (deleted once it answered)."""
    return f"checks/{tenant_id}/{check_id}"


def require_model(tenant_id: object, model_id: object) -> None:
    """404 unless the tenant has this model (another tenant's is missing too)."""
    if not TrainedModel.objects.for_tenant(tenant_id).filter(id=model_id).exists():
        raise NotFound("Model not found.")


def start(tenant_id: object, model_id: object, image: UploadedFile, top_k: int,
          timeout: float | None = None) -> list[dict[str, Any]]:
    """The model's predictions for one image; 404, 400 on `image`, or 503 past the wait."""
    require_model(tenant_id, model_id)
    limit = settings.SERVING_MAX_IMAGE_BYTES
    if image.size > limit:
        raise ValidationFailed("The image is too large.", fields={"image": [
            f"The image is {image.size} bytes; at most {limit}."]})
    check_id = str(uuid.uuid4())
    key = default_storage.save(staging_key(tenant_id, check_id), image)
    CHECK.send(str(model_id), key, check_id, top_k)
    deadline = time.monotonic() + (CHECK_WAIT_S if timeout is None else timeout)
    while time.monotonic() < deadline:
        answer = cache.get(result_key(check_id))
        if answer is not None:
            if "error" in answer:
                raise ValidationFailed(answer["error"], fields={"image": [answer["error"]]})
            return answer["predictions"]
        time.sleep(POLL_S)
    raise Unavailable("The check is taking longer than usual (the CPU workers are busy); "
                      "try again shortly.", headers={"Retry-After": "10"})


def run_check(model_id: str, key: str, check_id: str, top_k: int) -> None:
    """The worker side: predict on the staged image, answer through the cache, delete it."""
    import tempfile
    from pathlib import Path

    from modelregistry import api
    from training_runtime.predict import InvalidImageError, Predictor

    try:
        ref = api.get_unscoped(model_id)
        with default_storage.open(key, "rb") as fh:
            data = fh.read()
        with tempfile.TemporaryDirectory() as tmp:
            predictor = Predictor.load(api.fetch_artifact(ref, Path(tmp)), "cpu")
            try:
                found = predictor.predict([data], top_k=top_k)[0]
            except InvalidImageError as exc:
                cache.set(result_key(check_id), {"error": str(exc)}, RESULT_TTL_S)
                return
        cache.set(result_key(check_id), {"predictions": found}, RESULT_TTL_S)
    finally:
        default_storage.delete(key)
