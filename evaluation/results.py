"""The stored results of an evaluation: ground truth and predictions, enough to recompute.

One gzipped JSON file per evaluation in default_storage (`results_key`):

    {"format": "automl-evaluation-results", "version": 1, "scenario": ..., "labels": [...],
     # classification: one row per image, a probability per label (labels order)
     "images": [{"id", "file_name"}], "y_true": [label index], "scores": [[p, ...]],
     # detection / segmentation: COCO ground truth and COCO results (boxes, min_score 0)
     "gt": {"images", "annotations", "categories"}, "dt": [{"image_id", "category_id", ...}]}

Segmentation adds masks in COCO form, still version 1: every ground truth carries
"segmentation" (the dataset's polygons or RLE) and "area" = its mask area, every detection
"segmentation" (the model's RLE); boxes keep their "bbox". Such a document is evaluated twice,
boxes ("bbox", `Results.coco`) and masks ("segm", `Results.coco_mask`); a segmentation document
written before masks were stored has boxes only.

Reports read it through `load`, which parses it once per evaluation and keeps the last few in
memory (the COCO matching of a detection report is the expensive part).
"""

import copy
import functools
import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

FORMAT = "automl-evaluation-results"
VERSION = 1
BATCH = 16
CACHE_SIZE = 8


def results_key(tenant_id: object, evaluation_id: object) -> str:
    """Where an evaluation's results file lives."""
    return f"evaluations/{tenant_id}/{evaluation_id}/results.json.gz"


def store(key: str, document: dict[str, Any]) -> None:
    """Write the results document (gzipped JSON), replacing an older one."""
    payload = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)
    if default_storage.exists(key):
        default_storage.delete(key)
    default_storage.save(key, ContentFile(payload))


def _batches(items: Sequence[Any], size: int = BATCH) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def file_name_of(path: str, data_format: str) -> str:
    """The image's name as the dataset names it (COCO: relative to images/)."""
    if data_format == "coco" and path.startswith("images/"):
        return path[len("images/"):]
    return path


def classification_document(index: Any, root: Path, predictor: Any,
                            on_batch: Callable[[int, int], None], batch_size: int = BATCH
                            ) -> dict[str, Any]:
    """Predict every image (all labels' probabilities) and pair them with the truth;
    `on_batch(images done, images in all)` after each batch."""
    labels = list(predictor.labels) + [n for n in index.labels if n not in predictor.labels]
    column = {name: i for i, name in enumerate(labels)}
    scores = np.zeros((len(index.samples), len(labels)))
    row = 0
    for batch in _batches(index.samples, batch_size):
        predictions = predictor.predict([str(root / s.path) for s in batch],
                                        top_k=len(predictor.labels), min_score=0.0)
        for items in predictions:
            for item in items:
                scores[row, column[item["label"]]] = round(float(item["score"]), 7)
            row += 1
        on_batch(row, len(index.samples))
    return {"format": FORMAT, "version": VERSION, "scenario": "classification",
            "labels": labels,
            "images": [{"id": i + 1, "file_name": s.path} for i, s in enumerate(index.samples)],
            "y_true": [column[index.labels[s.label]] for s in index.samples],
            "scores": scores.tolist()}


def _category_ids(index: Any, root: Path, data_format: str) -> dict[str, int]:
    """Label name -> category id: the uploaded COCO file's ids, else 1..n in label order."""
    if data_format == "coco":
        with open(root / "annotations.json", encoding="utf-8") as fh:
            declared = json.load(fh).get("categories", [])
        ids = {c["name"]: c["id"] for c in declared if isinstance(c, dict)}
        if all(name in ids for name in index.labels):
            return {name: ids[name] for name in index.labels}
    return {name: i + 1 for i, name in enumerate(index.labels)}


def _image_ids(index: Any, data_format: str) -> list[Any]:
    """The uploaded COCO file's image ids when they are integers, else 1..n."""
    ids = [s.source_id for s in index.samples]
    if data_format == "coco" and all(isinstance(v, int) and not isinstance(v, bool)
                                     for v in ids):
        return ids
    return list(range(1, len(index.samples) + 1))


def mask_area(segmentation: Any, height: int, width: int) -> float:
    """Pixels of a COCO segmentation (polygons or RLE), as pycocotools' `mask.area` counts."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(copy.deepcopy(segmentation), height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(copy.deepcopy(segmentation), *segmentation["size"])
    else:
        rle = segmentation
    return float(mask_utils.area(rle))


def _empty_mask(height: int, width: int) -> dict[str, Any]:
    """The RLE of a mask with no pixels (a detection that came without one)."""
    return {"size": [height, width], "counts": [height * width]}


def detection_document(index: Any, root: Path, data_format: str, predictor: Any,
                       on_batch: Callable[[int, int], None], batch_size: int = BATCH
                       ) -> dict[str, Any]:
    """Predict every image (every detection, min_score 0) as COCO results beside the truth;
    segmentation adds the masks of both (see the module docstring). `on_batch(images done,
    images in all)` after each batch."""
    masks = predictor.scenario == "segmentation"
    category_of = _category_ids(index, root, data_format)
    next_id = max(category_of.values(), default=0) + 1
    for name in predictor.labels:  # labels the model knows and the test set lacks
        if name not in category_of:
            category_of[name], next_id = next_id, next_id + 1
    image_ids = _image_ids(index, data_format)
    images, annotations = [], []
    for image_id, sample in zip(image_ids, index.samples, strict=True):
        images.append({"id": image_id, "file_name": file_name_of(sample.path, data_format),
                       "width": sample.width, "height": sample.height})
        crowd = sample.iscrowd or [False] * len(sample.boxes)
        segmentations = sample.segmentations if masks else [None] * len(sample.boxes)
        for (x1, y1, x2, y2), label, is_crowd, segmentation in zip(
                sample.boxes, sample.box_labels, crowd, segmentations, strict=True):
            w, h = x2 - x1, y2 - y1
            annotation = {"id": len(annotations) + 1, "image_id": image_id,
                          "category_id": category_of[index.labels[label]],
                          "bbox": [x1, y1, w, h], "area": w * h,
                          "iscrowd": int(bool(is_crowd))}
            if masks:
                annotation["segmentation"] = segmentation
                annotation["area"] = mask_area(segmentation, sample.height, sample.width)
            annotations.append(annotation)
    detections = []
    done = 0
    for ids, batch in zip(_batches(image_ids, batch_size),
                          _batches(index.samples, batch_size), strict=True):
        predictions = predictor.predict([str(root / s.path) for s in batch], min_score=0.0)
        for image_id, sample, items in zip(ids, batch, predictions, strict=True):
            for item in items:
                detection = {"image_id": image_id, "category_id": category_of[item["label"]],
                             "bbox": [round(float(v), 3) for v in item["bbox"]],
                             "score": round(float(item["score"]), 7)}
                if masks:
                    detection["segmentation"] = (item.get("mask")
                                                 or _empty_mask(sample.height, sample.width))
                detections.append(detection)
        done += len(batch)
        on_batch(done, len(index.samples))
    categories = [{"id": cid, "name": name} for name, cid in category_of.items()]
    return {"format": FORMAT, "version": VERSION, "scenario": predictor.scenario,
            "labels": list(category_of), "gt": {"images": images, "annotations": annotations,
                                                "categories": categories},
            "dt": detections}


@dataclass
class Results:
    """A parsed results document with what reports compute from it, computed once."""

    document: dict[str, Any]
    classification: Any = None  # metrics.classification.ClassificationReport
    coco: Any = None  # metrics.coco.CocoResult of the boxes
    coco_mask: Any = None  # ... of the masks ("segm"): segmentation documents with masks only
    names: dict[Any, str] = field(default_factory=dict)  # category id -> label
    category_of: dict[str, Any] = field(default_factory=dict)  # label -> category id
    file_names: dict[Any, str] = field(default_factory=dict)  # image id -> file name
    scores: np.ndarray | None = None

    @property
    def scenario(self) -> str:
        """classification, detection or segmentation."""
        return self.document["scenario"]

    @property
    def is_classification(self) -> bool:
        """Single-label classification results (rows of scores) rather than COCO ones."""
        return self.scenario == "classification"


def parse(document: dict[str, Any]) -> Results:
    """Compute the reusable parts of a results document (classification report, COCO matches)."""
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise ValueError("not an evaluation results document of a known version")
    if document["scenario"] == "classification":
        from metrics import classification

        scores = np.asarray(document["scores"], dtype=float).reshape(-1, len(document["labels"]))
        report = classification.evaluate(document["y_true"], scores, document["labels"],
                                          image_ids=[i["id"] for i in document["images"]])
        return Results(document, classification=report, scores=scores,
                       file_names={i["id"]: i["file_name"] for i in document["images"]})
    from metrics import coco

    gt = document["gt"]
    names = {c["id"]: c["name"] for c in gt["categories"]}
    coco_mask = None
    if has_masks(document):
        coco_mask = coco.evaluate(gt, document["dt"], "segm")
    return Results(document, coco=coco.evaluate(gt, document["dt"], "bbox"),
                   coco_mask=coco_mask, names=names,
                   category_of={name: cid for cid, name in names.items()},
                   file_names={i["id"]: i["file_name"] for i in gt["images"]})


def has_masks(document: dict[str, Any]) -> bool:
    """A segmentation document whose truth and detections all carry masks."""
    if document.get("scenario") != "segmentation":
        return False
    return (all("segmentation" in a for a in document["gt"]["annotations"])
            and all("segmentation" in d for d in document["dt"]))


def coco_for(results: Results, iou_type: str) -> Any:
    """The COCO evaluation of the boxes ("bbox") or of the masks ("segm"); ValueError when the
    results have no such evaluation (classification, or "segm" without masks)."""
    if results.is_classification:
        raise ValueError("classification results have no COCO evaluation")
    if iou_type == "bbox":
        return results.coco
    if iou_type == "segm" and results.coco_mask is not None:
        return results.coco_mask
    if iou_type == "segm":
        raise ValueError("these results have no masks to evaluate (segm)")
    raise ValueError(f"iou_type must be 'bbox' or 'segm', not {iou_type!r}")


@functools.lru_cache(maxsize=CACHE_SIZE)
def load(key: str) -> Results:
    """The parsed results at `key` (one per evaluation), kept for the next report."""
    with default_storage.open(key, "rb") as fh:
        document = json.loads(gzip.decompress(fh.read()))
    return parse(document)
