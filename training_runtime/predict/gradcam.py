"""Grad-CAM heatmaps for classification CNNs (Selvaraju et al., 2017).

The map is ReLU(sum_c mean(dScore/dA_c) * A_c) over the activations A of one convolution
(the model's last nn.Conv2d unless given), upsampled to the image's size and scaled to [0, 1];
a map with no positive evidence is all zeros. Deterministic for a given model and image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn import functional as TF

from training_runtime.predict.inputs import ImageInput, preprocess, to_tensor

if TYPE_CHECKING:
    import numpy as np

    from training_runtime.predict.predictor import Predictor


def last_conv(model: nn.Module) -> nn.Conv2d:
    """The last nn.Conv2d registered in `model`, or ValueError when there is none."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional model; this one has no nn.Conv2d.")
    return convs[-1]


def _inputs(source: Any, image: ImageInput | Tensor, input_size: tuple[int, int] | None,
            normalization: tuple[Sequence[float], Sequence[float]] | None,
            ) -> tuple[nn.Module, Tensor, tuple[int, int], Sequence[str] | None]:
    """(eager model, 1xCxHxW input on its device, original (h, w), labels or None)."""
    from training_runtime.predict.predictor import Predictor

    if isinstance(source, Predictor):
        if source.scenario != "classification":
            raise ValueError(f"Grad-CAM is for classification models, not {source.scenario}.")
        raw = to_tensor(image)
        manifest = source.manifest
        batch = preprocess(raw, manifest.input_size, manifest.normalization)[None]
        return (source.eager_model(), batch.to(source.device), (raw.shape[1], raw.shape[2]),
                source.labels)
    if not isinstance(source, nn.Module):
        raise TypeError(f"gradcam needs a Predictor or an nn.Module, got {type(source).__name__}.")
    device = next(source.parameters()).device
    if isinstance(image, Tensor) and image.is_floating_point():
        if image.ndim != 3:
            raise ValueError(f"A preprocessed image must be CxHxW, got shape {tuple(image.shape)}.")
        return source, image[None].to(device), (image.shape[1], image.shape[2]), None
    raw = to_tensor(image)
    size = input_size or (raw.shape[1], raw.shape[2])
    return source, preprocess(raw, size, normalization)[None].to(device), \
        (raw.shape[1], raw.shape[2]), None


def _target(logits: Tensor, target_label: str | int | None,
            labels: Sequence[str] | None) -> int:
    """The class index to explain: the top class, a label's index or an index."""
    if target_label is None:
        return int(logits.argmax(dim=1)[0])
    if isinstance(target_label, str):
        if labels is None or target_label not in labels:
            raise ValueError(f"Unknown label {target_label!r}; known: {list(labels or [])}.")
        return list(labels).index(target_label)
    if not 0 <= int(target_label) < logits.shape[1]:
        raise ValueError(f"target_label {target_label} is outside 0..{logits.shape[1] - 1}.")
    return int(target_label)


def gradcam(predictor_or_model: Predictor | nn.Module, image: ImageInput | Tensor,
            target_label: str | int | None = None, layer: nn.Module | None = None, *,
            input_size: tuple[int, int] | None = None,
            normalization: tuple[Sequence[float], Sequence[float]] | None = None) -> np.ndarray:
    """An HxW float32 heatmap in [0, 1] of the evidence for `target_label` (default: top class).

    With a Predictor, `image` is any prediction input and is preprocessed like `predict`;
    with a bare model, pass a preprocessed CxHxW float tensor, or an image plus `input_size`
    and `normalization`. The map has the image's original size.
    """
    model, batch, (height, width), labels = _inputs(predictor_or_model, image, input_size,
                                                    normalization)
    layer = layer or last_conv(model)
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: captured.append(output))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            batch = batch.clone().requires_grad_(True)
            logits = model(batch)
            if not captured:
                raise ValueError("The chosen layer did not run in the model's forward pass.")
            index = _target(logits, target_label, labels)
            activations = captured[-1]
            (grads,) = torch.autograd.grad(logits[0, index], activations)
    finally:
        handle.remove()
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = TF.relu((weights * activations).sum(dim=1, keepdim=True)).detach()
    cam = TF.interpolate(cam, size=(int(height), int(width)), mode="bilinear",
                         align_corners=False)[0, 0].clamp_min(0)
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else torch.zeros_like(cam)
    return cam.clamp(0, 1).cpu().numpy().astype("float32")
