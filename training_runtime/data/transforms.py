"""torchvision.transforms.v2 pipelines: boxes (tv_tensors.BoundingBoxes, XYXY) and masks
(tv_tensors.Mask) follow the image through resizing and flipping.

Normalisation defaults to ImageNet mean/std for classification and is off for detection and
segmentation, because torchvision's detection models normalise inside the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _size(input_size: int | Sequence[int]) -> list[int]:
    if isinstance(input_size, int):
        return [input_size, input_size]
    height, width = input_size
    return [int(height), int(width)]


def _tail(scenario: str, normalize: bool | None, mean: Sequence[float],
          std: Sequence[float]) -> list[v2.Transform]:
    steps: list[v2.Transform] = [v2.ToDtype(torch.float32, scale=True)]
    if scenario != "classification":
        steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes()]
    if normalize is None:
        normalize = scenario == "classification"
    if normalize:
        steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    return steps


AUGMENTATIONS = ("none", "light", "strong")


def _strong(scenario: str, size: list[int]) -> list[v2.Transform]:
    """Geometric and colour augmentation; v2 moves boxes and masks with the image."""
    if scenario == "classification":
        return [v2.ToImage(), v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
                v2.RandomHorizontalFlip(p=0.5), v2.RandomRotation(15),
                v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)]
    return [v2.ToImage(), v2.RandomPhotometricDistort(p=0.5),
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.75, 1.25)),
            v2.Resize(size, antialias=True), v2.RandomHorizontalFlip(p=0.5)]


def train_transforms(scenario: str, input_size: int | Sequence[int] = 224, *,
                     hflip_p: float = 0.5, color_jitter: float = 0.2,
                     normalize: bool | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD,
                     augmentation: str | None = None) -> v2.Compose:
    """Resize to `input_size` (int: square; (height, width)), random horizontal flip, colour
    jitter, float conversion, then box clean-up (detection) and normalisation.

    `augmentation` ("none", "light", "strong") picks a preset instead of hflip_p/color_jitter:
    none only resizes; light is the flip and a mild jitter; strong adds crops or affine moves
    and rotation.
    """
    if augmentation is not None and augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
    if augmentation == "strong":
        return v2.Compose(_strong(scenario, _size(input_size))
                          + _tail(scenario, normalize, mean, std))
    if augmentation == "none":
        hflip_p, color_jitter = 0.0, 0.0
    elif augmentation == "light":
        hflip_p, color_jitter = 0.5, 0.2
    steps: list[v2.Transform] = [v2.ToImage(), v2.Resize(_size(input_size), antialias=True)]
    if hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip_p))
    if color_jitter > 0:
        steps.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter,
                                    saturation=color_jitter, hue=min(color_jitter / 4, 0.5)))
    return v2.Compose(steps + _tail(scenario, normalize, mean, std))


def eval_transforms(scenario: str, input_size: int | Sequence[int] = 224, *,
                    normalize: bool | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """Deterministic resize, float conversion, box clean-up (detection) and normalisation."""
    steps: list[v2.Transform] = [v2.ToImage(), v2.Resize(_size(input_size), antialias=True)]
    return v2.Compose(steps + _tail(scenario, normalize, mean, std))
