"""Grad-CAM heatmaps of classification evaluations (E9), computed on first request and cached.

The map is computed with the evaluated model (`training_runtime.predict.gradcam`) and stored as
JSON next to the results; later requests read it back. It is averaged down to at most GRID
cells a side: enough to overlay on a preview, small enough for a JSON answer.
"""

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from evaluation import previews
from evaluation.models import Evaluation

GRID = 64


def _key(evaluation: Evaluation, image_id: object, label: str) -> str:
    digest = hashlib.sha256(f"{image_id}\0{label}".encode()).hexdigest()[:32]
    return f"evaluations/{evaluation.tenant_id}/{evaluation.id}/heatmaps/{digest}.json"


@functools.lru_cache(maxsize=2)
def _predictor(model_id: str) -> Any:
    """The evaluated model, fetched and loaded once per process (the last two)."""
    from modelregistry import api as modelregistry
    from training_runtime.predict import Predictor

    model = modelregistry.get_unscoped(model_id)
    if model is None:
        raise LookupError(f"model {model_id} is not in the registry")
    folder = Path(settings.DATA_DIR) / "cache" / "heatmap-models" / model_id
    folder.mkdir(parents=True, exist_ok=True)
    return Predictor.load(modelregistry.fetch_artifact(model, folder), "cpu")


def _downsampled(cam: Any) -> list[list[float]]:
    import torch
    from torch.nn import functional as TF

    tensor = torch.as_tensor(cam, dtype=torch.float32)[None, None]
    height, width = tensor.shape[-2:]
    size = (min(GRID, int(height)), min(GRID, int(width)))
    grid = TF.adaptive_avg_pool2d(tensor, size)[0, 0]
    return [[round(float(v), 4) for v in row] for row in grid.tolist()]


def heatmap(evaluation: Evaluation, detail: dict[str, Any], label: str, score: float
            ) -> dict[str, Any]:
    """The Grad-CAM of `label` on the image of `detail` (an image_detail body)."""
    key = _key(evaluation, detail["image_id"], label)
    if default_storage.exists(key):
        with default_storage.open(key, "rb") as fh:
            return json.loads(fh.read())
    from training_runtime.predict import gradcam

    image = previews.image_bytes(evaluation, detail["file_name"])
    cam = gradcam(_predictor(str(evaluation.model_id)), image, label)
    body = {"image_id": detail["image_id"], "file_name": detail["file_name"], "label": label,
            "score": score, "height": int(cam.shape[0]), "width": int(cam.shape[1]),
            "grid": _downsampled(cam)}
    default_storage.save(key, ContentFile(json.dumps(body).encode()))
    return body
