"""The detection and instance-segmentation step and evaluation for `train(step_fn=,
evaluate_fn=)`.

Batches are `detection_collate`'s (images, targets) tuples. Targets carry model labels, as
TorchDataset yields them (dataset label + `label_offset`, background 0), and torchvision's
detectors output the same labels. The evaluator turns both sides back into dataset labels:
COCO category id = model label - `label_offset` (default 1), so category k is the dataset's
0-based label k on the ground-truth and on the detection side alike.

    result = train(model, train_set, val_set, config, step_fn=detection_step,
                   evaluate_fn=detection_evaluator(), collate_fn=detection_collate)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import nn

from metrics.coco import evaluate
from training_runtime.train.steps import EvaluateFn

IOU_TYPES = ("bbox", "segm")
MASK_THRESHOLD = 0.5


def detection_step(model: nn.Module, batch: Any) -> torch.Tensor:
    """The summed loss dict of a torchvision detector in train mode on (images, targets)."""
    images, targets = batch
    losses = model(list(images), list(targets))
    return sum(losses.values(), torch.zeros((), device=_device_of(model)))


def detection_evaluator(iou_type: str = "bbox", *, label_offset: int = 1) -> EvaluateFn:
    """An evaluate_fn: COCO mAP of the model's outputs on the loader's (images, targets).

    Returns {"map50": AP at IoU 0.5, "map": AP at IoU 0.50:0.95}, both in [0, 1]; 0.0 where
    COCO leaves them undefined (no ground-truth objects at all). "segm" scores the masks
    (binarised at 0.5, RLE-encoded) and needs "masks" in the targets and the outputs.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")

    def evaluate_fn(model: nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        gt, detections = coco_inputs(model, loader, iou_type=iou_type,
                                     label_offset=label_offset)
        stats = evaluate(gt, detections, iou_type).stats
        return {"map50": max(0.0, float(stats[1])), "map": max(0.0, float(stats[0]))}

    return evaluate_fn


def coco_inputs(model: nn.Module, loader: Iterable[Any], *, iou_type: str = "bbox",
                label_offset: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO ground-truth dict and results list of `model` over `loader`, in eval mode.

    Images are numbered in loader order (the targets' own image_id is not trusted to be
    unique across a loader); categories are every label seen on either side.
    """
    inner = getattr(model, "module", model)  # DDP: evaluate the wrapped model directly
    was_training = inner.training
    inner.eval()
    device = _device_of(inner)
    images_out: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    try:
        with torch.no_grad():
            for images, targets in loader:
                outputs = inner([image.to(device) for image in images])
                for image, target, output in zip(images, targets, outputs, strict=True):
                    image_id = len(images_out)
                    height, width = int(image.shape[-2]), int(image.shape[-1])
                    images_out.append({"id": image_id, "height": height, "width": width})
                    annotations += _ground_truth(target, image_id, len(annotations) + 1,
                                                 iou_type, label_offset)
                    detections += _results(output, image_id, iou_type, label_offset)
    finally:
        inner.train(was_training)
    labels = {a["category_id"] for a in annotations} | {d["category_id"] for d in detections}
    gt = {"images": images_out, "annotations": annotations,
          "categories": [{"id": c, "name": str(c)} for c in sorted(labels)]}
    return gt, detections


def _device_of(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def _xywh(boxes: torch.Tensor) -> list[list[float]]:
    boxes = boxes.detach().float().cpu().reshape(-1, 4)
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
    return torch.cat([boxes[:, :2], wh], dim=1).tolist()


def _rles(masks: torch.Tensor) -> list[dict[str, Any]]:
    """(N, [1,] H, W) masks or probabilities as RLEs with str counts (JSON-safe)."""
    masks = masks.detach().cpu()
    if masks.shape[0] == 0:
        return []
    if masks.dim() == 4:
        masks = masks[:, 0]
    binary = (masks.float() > MASK_THRESHOLD) if masks.is_floating_point() else (masks > 0)
    array = np.asfortranarray(binary.numpy().astype(np.uint8).transpose(1, 2, 0))
    with warnings.catch_warnings():  # pycocotools' own numpy-2 deprecation, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = mask_utils.encode(array)
    for rle in encoded:
        rle["counts"] = rle["counts"].decode("ascii")
    return encoded


def _ground_truth(target: dict[str, Any], image_id: int, first_id: int, iou_type: str,
                  label_offset: int) -> list[dict[str, Any]]:
    boxes = _xywh(torch.as_tensor(target["boxes"]))
    labels = torch.as_tensor(target["labels"]).reshape(-1).tolist()
    crowd = target.get("iscrowd")
    crowd = [0] * len(labels) if crowd is None else torch.as_tensor(crowd).reshape(-1).tolist()
    rows = []
    segms = _rles(torch.as_tensor(target["masks"])) if iou_type == "segm" else None
    for n, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        row = {"id": first_id + n, "image_id": image_id,
               "category_id": int(label) - label_offset, "bbox": box,
               "area": box[2] * box[3], "iscrowd": int(crowd[n])}
        if segms is not None:
            row["segmentation"] = segms[n]
            row["area"] = float(mask_utils.area(segms[n]))
        rows.append(row)
    return rows


def _results(output: dict[str, torch.Tensor], image_id: int, iou_type: str,
             label_offset: int) -> list[dict[str, Any]]:
    boxes = _xywh(output["boxes"])
    labels = output["labels"].reshape(-1).tolist()
    scores = output["scores"].detach().float().reshape(-1).tolist()
    segms = _rles(output["masks"]) if iou_type == "segm" else None
    rows = []
    for n, (box, label, score) in enumerate(zip(boxes, labels, scores, strict=True)):
        row = {"image_id": image_id, "category_id": int(label) - label_offset, "bbox": box,
               "score": score}
        if segms is not None:
            row["segmentation"] = segms[n]
        rows.append(row)
    return rows
