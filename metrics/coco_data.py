"""COCO ground truth and results, validated and turned into arrays grouped by image and category.

Mirrors what `pycocotools.COCO.loadRes` and `COCOeval._prepare` do to their inputs, because the
reference's numbers depend on it: detection areas are recomputed (from the box when the first
result has a box, else from the mask), ground-truth areas are taken as given, crowd means
ignored, and annotations keep their input order within an image.
"""

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class CocoFormatError(ValueError):
    """The input is not valid COCO; the message says what and where."""


@dataclass
class Annotations:
    """One side (ground truth or detections) as parallel arrays, in input order."""

    ids: np.ndarray
    image_ids: np.ndarray
    category_ids: np.ndarray
    boxes: np.ndarray  # x, y, w, h (float64)
    areas: np.ndarray
    crowd: np.ndarray  # bool; always False for detections
    scores: np.ndarray  # detections only (zeros for ground truth)
    segmentations: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CocoFormatError(message)


def _box(value: Any, where: str) -> list[float]:
    _require(isinstance(value, list | tuple) and len(value) == 4,
             f"{where}: bbox must be [x, y, width, height]")
    try:
        box = [float(v) for v in value]
    except (TypeError, ValueError):
        raise CocoFormatError(f"{where}: bbox values must be numbers") from None
    _require(all(math.isfinite(v) for v in box), f"{where}: bbox values must be finite")
    _require(box[2] >= 0 and box[3] >= 0, f"{where}: bbox width and height must not be negative")
    return box


def image_sizes(gt: dict) -> dict[int, tuple[int, int]]:
    """Image id -> (height, width), for images that say."""
    return {img["id"]: (img["height"], img["width"]) for img in gt["images"]
            if "height" in img and "width" in img}


def load_ground_truth(gt: Any, iou_type: str) -> tuple[Annotations, list[int], list[int]]:
    """Validate a COCO ground-truth dict; returns annotations, image ids and category ids."""
    _require(isinstance(gt, dict), "ground truth must be a JSON object")
    for key in ("images", "annotations", "categories"):
        _require(key in gt, f"ground truth has no '{key}' list")
        _require(isinstance(gt[key], list), f"ground truth '{key}' must be a list")
    image_ids = []
    for n, image in enumerate(gt["images"]):
        _require(isinstance(image, dict) and "id" in image, f"images[{n}] has no id")
        image_ids.append(image["id"])
    _require(len(set(image_ids)) == len(image_ids), "ground truth has duplicate image ids")
    category_ids = []
    for n, category in enumerate(gt["categories"]):
        _require(isinstance(category, dict) and "id" in category, f"categories[{n}] has no id")
        category_ids.append(category["id"])
    known_images = set(image_ids)
    fast = _fast_ground_truth(gt["annotations"], known_images, iou_type)
    if fast is not None:
        return fast, image_ids, category_ids
    ids, images, cats, boxes, areas, crowd, segms = [], [], [], [], [], [], []
    for n, ann in enumerate(gt["annotations"]):
        where = f"annotations[{n}]"
        _require(isinstance(ann, dict), f"{where} must be an object")
        for key in ("id", "image_id", "category_id", "area"):
            _require(key in ann, f"{where} has no '{key}'")
        _require(ann["image_id"] in known_images,
                 f"{where}: image_id {ann['image_id']!r} is not among the images")
        if iou_type == "bbox" or "bbox" in ann:
            boxes.append(_box(ann.get("bbox"), where))
        else:
            boxes.append([0.0, 0.0, 0.0, 0.0])
        if iou_type == "segm":
            _require("segmentation" in ann, f"{where} has no segmentation")
            segms.append(ann["segmentation"])
        ids.append(ann["id"])
        images.append(ann["image_id"])
        cats.append(ann["category_id"])
        areas.append(float(ann["area"]))
        crowd.append(bool(ann.get("iscrowd", 0)))
    annotations = Annotations(
        ids=np.array(ids, dtype=object), image_ids=np.array(images, dtype=object),
        category_ids=np.array(cats, dtype=object), boxes=np.array(boxes, dtype=np.float64)
        .reshape(-1, 4), areas=np.array(areas, dtype=np.float64),
        crowd=np.array(crowd, dtype=bool), scores=np.zeros(len(ids)), segmentations=segms)
    return annotations, image_ids, category_ids


def _columns(rows: list, keys: tuple[str, ...]) -> list[list] | None:
    """Each key's values across rows, or None when a row is not a dict or lacks a key."""
    try:
        return [[row[key] for row in rows] for key in keys]
    except (KeyError, TypeError):
        return None


def _valid_boxes(values: list) -> np.ndarray | None:
    try:
        boxes = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if boxes.shape != (len(values), 4) or not np.isfinite(boxes).all() or (boxes[:, 2:] < 0).any():
        return None
    return boxes


def _fast_ground_truth(anns: list, known: set, iou_type: str) -> Annotations | None:
    """Well-formed ground truth in bulk; None means validate annotation by annotation."""
    columns = _columns(anns, ("id", "image_id", "category_id", "area", "bbox"))
    if columns is None:
        return None
    ids, images, cats, areas, boxes = columns
    boxes = _valid_boxes(boxes)
    try:
        areas = np.array(areas, dtype=np.float64)
        images_known = known.issuperset(images)
    except (TypeError, ValueError):
        return None
    if boxes is None or not images_known or areas.shape != (len(anns),):
        return None
    segms = []
    if iou_type == "segm":
        segms = [ann.get("segmentation") for ann in anns]
        if any(seg is None for seg in segms):
            return None
    return Annotations(
        ids=np.array(ids, dtype=object), image_ids=np.array(images, dtype=object),
        category_ids=np.array(cats, dtype=object), boxes=boxes, areas=areas,
        crowd=np.array([bool(ann.get("iscrowd", 0)) for ann in anns], dtype=bool),
        scores=np.zeros(len(anns)), segmentations=segms)


def _fast_detections(results: list, known: set, iou_type: str) -> Annotations | None:
    """The common case (every result well formed, with a box) in bulk; None means look closer."""
    columns = _columns(results, ("image_id", "category_id", "score", "bbox"))
    if columns is None:
        return None
    images, cats, scores, boxes = columns
    boxes = _valid_boxes(boxes)
    try:
        scores = np.array(scores, dtype=np.float64)
        images_known = known.issuperset(images)
    except (TypeError, ValueError):
        return None
    if boxes is None or not images_known or not np.isfinite(scores).all():
        return None
    segms = [row.get("segmentation") for row in results]
    if iou_type == "segm" and not all(isinstance(seg, dict | list) for seg in segms):
        return None
    return Annotations(
        ids=np.arange(1, len(results) + 1), image_ids=np.array(images, dtype=object),
        category_ids=np.array(cats, dtype=object), boxes=boxes,
        areas=boxes[:, 2] * boxes[:, 3], crowd=np.zeros(len(results), dtype=bool),
        scores=scores, segmentations=segms)


def load_detections(results: Any, known_images: Iterable[Any], iou_type: str) -> Annotations:
    """Validate a COCO results list; areas and ids are assigned as pycocotools' loadRes does."""
    _require(isinstance(results, list), "detections must be a JSON list of results")
    known = set(known_images)
    with_boxes = bool(results) and isinstance(results[0], dict) and bool(results[0].get("bbox"))
    if with_boxes and (fast := _fast_detections(results, known, iou_type)) is not None:
        return fast
    images, cats, boxes, areas, scores, segms = [], [], [], [], [], []
    for n, det in enumerate(results):
        where = f"detections[{n}]"
        _require(isinstance(det, dict), f"{where} must be an object")
        for key in ("image_id", "category_id", "score"):
            _require(key in det, f"{where} has no '{key}'")
        _require(det["image_id"] in known,
                 f"{where}: image_id {det['image_id']!r} is not among the ground-truth images")
        try:
            score = float(det["score"])
        except (TypeError, ValueError):
            raise CocoFormatError(f"{where}: score must be a number") from None
        _require(math.isfinite(score), f"{where}: score must be finite")
        if iou_type == "segm":
            _require(isinstance(det.get("segmentation"), dict | list),
                     f"{where}: segm evaluation needs a segmentation (RLE) on every result")
        if with_boxes:
            box = _box(det.get("bbox"), where)
            area = box[2] * box[3]
        else:
            _require("segmentation" in det, f"{where} has neither bbox nor segmentation")
            from pycocotools import mask as mask_utils

            rle = det["segmentation"]
            _require(isinstance(rle, dict) and "counts" in rle and "size" in rle,
                     f"{where}: a result segmentation must be RLE with 'size' and 'counts'")
            area = float(mask_utils.area(rle))
            box = det.get("bbox") or [float(v) for v in mask_utils.toBbox(rle)]
            box = _box(box, where)
        images.append(det["image_id"])
        cats.append(det["category_id"])
        boxes.append(box)
        areas.append(area)
        scores.append(score)
        segms.append(det.get("segmentation"))
    count = len(images)
    return Annotations(
        ids=np.arange(1, count + 1), image_ids=np.array(images, dtype=object),
        category_ids=np.array(cats, dtype=object),
        boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
        areas=np.array(areas, dtype=np.float64), crowd=np.zeros(count, dtype=bool),
        scores=np.array(scores, dtype=np.float64), segmentations=segms)


def to_rles(annotations: Annotations, sizes: dict[Any, tuple[int, int]]) -> list[Any]:
    """Every segmentation as RLE, exactly as pycocotools' annToRLE converts it."""
    from pycocotools import mask as mask_utils

    rles = []
    for segm, image_id in zip(annotations.segmentations, annotations.image_ids, strict=True):
        if isinstance(segm, list):
            _require(image_id in sizes, f"image {image_id!r} needs height and width for polygons")
            h, w = sizes[image_id]
            rles.append(mask_utils.merge(mask_utils.frPyObjects(copy.deepcopy(segm), h, w)))
        elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
            h, w = segm["size"]
            rles.append(mask_utils.frPyObjects(copy.deepcopy(segm), h, w))
        else:
            _require(isinstance(segm, dict) and "counts" in segm, "a segmentation is malformed")
            rles.append(segm)
    return rles
