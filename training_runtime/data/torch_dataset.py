"""A torch Dataset over a validated DatasetIndex, in torchvision's model formats.

Classification yields (image, label index). Detection and segmentation yield (image, target)
with target = {"boxes": BoundingBoxes XYXY, "labels": int64, "image_id": int} and, for
segmentation, "masks": Mask (N, H, W) uint8 decoded from polygons or RLE. Detection labels are
shifted by `label_offset` (default 1: torchvision detection models reserve 0 for background).
Crowd objects are left out unless `include_crowd` is set.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from training_runtime.data.dataset import DatasetIndex, Sample, Segmentation
from training_runtime.data.images import DEFAULT_LIMITS, ImageLimits, load_rgb


def decode_segmentation(segmentation: Segmentation, height: int, width: int) -> np.ndarray:
    """A COCO polygon list or RLE dict as an (height, width) uint8 mask of 0 and 1."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": [height, width], "counts": segmentation["counts"].encode("ascii")}
    with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = mask_utils.decode(rle)
    return np.ascontiguousarray(decoded, dtype=np.uint8)


def detection_collate(batch: Sequence[tuple[Any, Any]]) -> tuple[tuple[Any, ...], ...]:
    """Collate (image, target) pairs into (images, targets) tuples, as detection models take."""
    return tuple(zip(*batch, strict=True))


class TorchDataset(Dataset):
    """The samples of an index (e.g. one side of `index.split()`) as model inputs."""

    def __init__(self, index: DatasetIndex, samples: Sequence[Sample] | None = None,
                 transforms: Callable[..., Any] | None = None, *, label_offset: int | None = None,
                 include_crowd: bool = False, limits: ImageLimits = DEFAULT_LIMITS) -> None:
        self.index = index
        self.samples = list(index.samples if samples is None else samples)
        self.transforms = transforms or v2.Compose([v2.ToImage(),
                                                    v2.ToDtype(torch.float32, scale=True)])
        default_offset = 0 if index.scenario == "classification" else 1
        self.label_offset = default_offset if label_offset is None else label_offset
        self.include_crowd = include_crowd
        self.limits = limits

    def __len__(self) -> int:
        """How many samples."""
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        """(image tensor, target) for sample `i`, transformed."""
        sample = self.samples[i]
        image = load_rgb(self.index.root / sample.path, self.limits)
        if self.index.scenario == "classification":
            assert sample.label is not None
            return self.transforms(image), sample.label + self.label_offset
        return self.transforms(image, self.target(sample, i, image.height, image.width))

    def target(self, sample: Sample, i: int, height: int, width: int) -> dict[str, Any]:
        """The untransformed detection/segmentation target of `sample`."""
        keep = [k for k in range(len(sample.boxes)) if self.include_crowd or not sample.iscrowd[k]]
        boxes = torch.tensor([sample.boxes[k] for k in keep], dtype=torch.float32).reshape(-1, 4)
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([sample.box_labels[k] + self.label_offset for k in keep],
                                   dtype=torch.int64),
            "image_id": i,
        }
        if self.index.scenario == "segmentation":
            masks = np.zeros((len(keep), height, width), dtype=np.uint8)
            for row, k in enumerate(keep):
                masks[row] = decode_segmentation(sample.segmentations[k], height, width)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(masks))
        return target
