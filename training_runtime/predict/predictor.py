"""Batched prediction from an exported artifact, in the API's shape.

    predictor = Predictor.load("/artifacts/model-7", device="cuda")
    predictor.predict([image_a, image_b], top_k=3, min_score=0.2)
    # [[{"label": "cat", "score": 0.91}, ...], [...]]                          classification
    # [[{"label": "cat", "score": 0.88, "bbox": [x, y, w, h]}, ...], ...]     detection
    # [[{"label": "cat", "score": 0.88, "bbox": [...], "mask": RLE}, ...]]    segmentation

Each image is resized to the artifact's input size (as in evaluation); boxes and masks are
mapped back to the original image's pixels. Every list is sorted by score, highest first.
`top_k` limits classification results only; detections are limited by `min_score` and the
model's own per-image cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor, nn
from torch.nn import functional as TF

from training_runtime.export.artifact import Manifest, load_manifest
from training_runtime.export.programs import load_program
from training_runtime.models import build, get
from training_runtime.predict.inputs import ImageInput, normalize, resize, to_tensor

MASK_THRESHOLD = 0.5


class Predictor:
    """A loaded artifact: its manifest and a callable model (eager or program) on a device."""

    def __init__(self, manifest: Manifest, model: nn.Module, device: torch.device,
                 uses_program: bool) -> None:
        self.manifest = manifest
        self.model = model
        self.device = device
        self.uses_program = uses_program
        self._eager: nn.Module | None = None if uses_program else model

    @classmethod
    def load(cls, artifact_path: Path | str, device: str | torch.device = "cpu", *,
             prefer_program: bool = True) -> Predictor:
        """Validate the artifact and load its program (if any and preferred) or weights."""
        manifest = load_manifest(artifact_path)
        device = torch.device(device)
        if prefer_program and manifest.program is not None:
            assert manifest.program_path is not None
            model = load_program(manifest.program["kind"], manifest.program_path, device)
            return cls(manifest, model, device, uses_program=True)
        return cls(manifest, _rebuild(manifest, device), device, uses_program=False)

    @property
    def labels(self) -> tuple[str, ...]:
        """The artifact's labels, in model output order."""
        return self.manifest.labels

    @property
    def scenario(self) -> str:
        """classification, detection or segmentation."""
        return self.manifest.scenario

    def eager_model(self) -> nn.Module:
        """The registry-built model with the artifact's weights (for Grad-CAM), built once."""
        if self._eager is None:
            self._eager = _rebuild(self.manifest, self.device)
        return self._eager

    def prepare(self, images: Sequence[ImageInput]
                ) -> tuple[list[Tensor], list[tuple[int, int]]]:
        """The images decoded and resized to the input size (uint8, on the CPU) and their
        original (h, w) sizes: the per-image part of preprocessing (a server does it per
        request, then `predict_prepared` on the batch)."""
        if isinstance(images, str | bytes) or not isinstance(images, Sequence):
            raise ValueError("images must be a list of images.")
        resized, sizes = [], []
        for i, image in enumerate(images):
            raw = to_tensor(image, where=f"image {i}")
            sizes.append((int(raw.shape[1]), int(raw.shape[2])))
            resized.append(resize(raw, self.manifest.input_size))
        return resized, sizes

    def preprocess(self, images: Sequence[ImageInput]
                   ) -> tuple[list[Tensor], list[tuple[int, int]]]:
        """Model inputs (resized, scaled, normalised, on the device) and original (h, w) sizes."""
        resized, sizes = self.prepare(images)
        return [normalize(x, self.manifest.normalization).to(self.device) for x in resized], sizes

    def predict(self, images: Sequence[ImageInput], *, top_k: int = 5,
                min_score: float = 0.0) -> list[list[dict[str, Any]]]:
        """One list of predictions per image, highest score first, with one forward pass."""
        resized, sizes = self.prepare(images)
        return self.predict_prepared(resized, sizes, top_k=top_k, min_score=min_score)

    def predict_prepared(self, resized: list[Tensor], sizes: list[tuple[int, int]], *,
                         top_k: int = 5, min_score: float = 0.0) -> list[list[dict[str, Any]]]:
        """`predict` on what `prepare` returned, scaled and normalised as one batch on the
        device (a few large operations instead of many small ones per image)."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score!r}.")
        if not resized:
            return []
        batch = normalize(torch.stack(resized).to(self.device), self.manifest.normalization)
        with torch.inference_mode():
            if self.scenario == "classification":
                logits = self.model(batch)
                return self.classification_results(logits, top_k, min_score)
            outputs = self.model(list(batch))
        return [self.detection_results(out, size, min_score) for out, size in zip(outputs, sizes,
                                                                                  strict=True)]

    def classification_results(self, logits: Tensor, top_k: int,
                               min_score: float) -> list[list[dict[str, Any]]]:
        """Top-k labels and softmax probabilities per row of `logits`, filtered by score."""
        probabilities = logits.float().softmax(dim=1).cpu()
        scores, indices = probabilities.topk(min(top_k, len(self.labels)), dim=1)
        return [[{"label": self.labels[int(i)], "score": float(s)}
                 for s, i in zip(row_scores, row_indices, strict=True) if float(s) >= min_score]
                for row_scores, row_indices in zip(scores, indices, strict=True)]

    def detection_results(self, output: dict[str, Tensor], size: tuple[int, int],
                          min_score: float) -> list[dict[str, Any]]:
        """Boxes [x, y, w, h] (and RLE masks) in original pixels for one image's detections."""
        height, width = size
        in_height, in_width = self.manifest.input_size
        scale = torch.tensor([width / in_width, height / in_height] * 2)
        scores = output["scores"].float().cpu()
        keep = (scores >= min_score).nonzero().flatten()
        keep = keep[scores[keep].argsort(descending=True, stable=True)]
        boxes = output["boxes"].float().cpu()[keep] * scale
        labels = output["labels"].cpu()[keep]
        masks = None
        if "masks" in output and len(keep):
            resized = TF.interpolate(output["masks"][keep.to(output["masks"].device)].float(),
                                     size=(height, width), mode="bilinear", align_corners=False)
            masks = (resized[:, 0] > MASK_THRESHOLD).cpu().numpy()
        results = []
        for row in range(len(keep)):
            x1, y1, x2, y2 = boxes[row].tolist()
            result: dict[str, Any] = {"label": self._label(int(labels[row])),
                                      "score": float(scores[keep[row]]),
                                      "bbox": [x1, y1, x2 - x1, y2 - y1]}
            if masks is not None:
                result["mask"] = encode_mask(masks[row])
            results.append(result)
        return results

    def _label(self, model_label: int) -> str:
        """The dataset label of a detector's class (1..n; 0 is the background)."""
        if not 1 <= model_label <= len(self.labels):
            raise RuntimeError(f"The model output class {model_label}, "
                               f"outside 1..{len(self.labels)}.")
        return self.labels[model_label - 1]


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of a boolean HxW mask, counts as str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": rle["counts"].decode("ascii")}


def _rebuild(manifest: Manifest, device: torch.device) -> nn.Module:
    """The registry's model for the manifest with its weights loaded (strict), in eval mode."""
    model = build(get(manifest.scenario, manifest.model_name), num_classes=len(manifest.labels),
                  **manifest.build_options)
    state = torch.load(manifest.weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()
