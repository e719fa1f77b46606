"""Random but realistic COCO ground truth and detections, deterministic from a seed.

`make_case(seed, iou_type, **knobs)` draws a scene from a seed: images (some with no
annotations), categories (one without ground truth, one without detections), boxes with
fractional coordinates in every area range and exactly on the range limits, crowd regions, ground
truth `area` fields that differ from w × h, and detections with a detector's faults (jitter,
misses, duplicates, wrong labels, background boxes, IoUs sitting on a threshold, tied scores, an
image with more than 100 detections of one category). For `segm` the ground truth masks are
polygons (some in several parts), compressed RLE and uncompressed RLE, and the detections carry
compressed RLE as real results files do. The ground truth and the boxes of the detections do not
depend on `iou_type`: a seed describes one scene, evaluated either way.

`reference_stats(gt, dets, iou_type, **params)` is pycocotools' answer (see cocoref).
"""

import copy
import warnings
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from tests.metrics.cocoref import reference_stats as reference_stats

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
MASK_FORMATS = ("polygon", "multipolygon", "rle", "rle_uncompressed")


@dataclass(frozen=True)
class Knobs:
    """What a generated case contains; every rate is a probability per object or detection."""

    n_images: int = 12
    n_categories: int = 4
    empty_image_rate: float = 0.2
    max_objects_per_image: int = 8
    categories_without_gt: int = 1
    categories_without_detections: int = 1
    crowd_rate: float = 0.08
    limit_area_rate: float = 0.1
    area_field_is_box_rate: float = 0.2
    miss_rate: float = 0.15
    duplicate_rate: float = 0.15
    wrong_label_rate: float = 0.1
    threshold_rate: float = 0.1
    background_per_image: float = 1.5
    tie_rate: float = 0.25
    dense_images: int = 1
    mask_formats: tuple[str, ...] = MASK_FORMATS
    det_bbox_in_segm: bool | None = None  # None: drawn from the seed
    shuffle: bool | None = None  # shuffle annotation and detection order; None: from the seed


# ---------------------------------------------------------------- hand-made cases


def image(image_id: int, width: int = 640, height: int = 480) -> dict:
    return {"id": image_id, "width": width, "height": height, "file_name": f"{image_id}.jpg"}


def annotation(ann_id: int, image_id: int, category_id: int, bbox: list[float], *,
               area: float | None = None, iscrowd: int = 0,
               segmentation: list | dict | None = None) -> dict:
    """A ground truth annotation; area defaults to w × h, segmentation to the box polygon."""
    x, y, w, h = bbox
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": list(bbox),
        "area": float(w * h if area is None else area),
        "iscrowd": iscrowd,
        "segmentation": segmentation or [[x, y, x, y + h, x + w, y + h, x + w, y]],
    }


def detection(image_id: int, category_id: int, bbox: list[float], score: float) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox), "score": score}


def dataset(images: list[dict], annotations: list[dict], category_ids: list[int]) -> dict:
    categories = [{"id": c, "name": f"class-{c}", "supercategory": "thing"} for c in category_ids]
    return {"images": images, "annotations": annotations, "categories": categories}


# ---------------------------------------------------------------- masks


def polygon_in_box(rng: np.random.Generator, box: list[float]) -> list[float]:
    """A star-shaped polygon inscribed in the box, as a flat [x1, y1, x2, y2, ...] list."""
    x, y, w, h = box
    n = int(rng.integers(5, 13))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.6, 1.0, n)
    xs = x + w / 2 + (w / 2) * radii * np.cos(angles)
    ys = y + h / 2 + (h / 2) * radii * np.sin(angles)
    return [round(float(v), 2) for pair in zip(xs, ys, strict=True) for v in pair]


def polygons_in_box(rng: np.random.Generator, box: list[float], parts: int) -> list[list[float]]:
    """One polygon per vertical strip of the box (a multi-part mask when parts > 1)."""
    x, y, w, h = box
    return [polygon_in_box(rng, [x + i * w / parts, y, w / parts, h]) for i in range(parts)]


def rle_from_polygons(polygons: list[list[float]], height: int, width: int) -> dict:
    """Compressed RLE with string counts, as it is stored in JSON."""
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def uncompressed_rle(rle: dict) -> dict:
    """The same mask as uncompressed RLE (column-major run lengths, starting with zeros)."""
    compressed = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    with warnings.catch_warnings():  # pycocotools' decode warns under numpy 2
        warnings.simplefilter("ignore", DeprecationWarning)
        flat = mask_utils.decode(compressed).ravel(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": list(rle["size"]), "counts": [int(c) for c in counts]}


def as_compressed_rle(segmentation: list | dict, height: int, width: int) -> dict:
    """Any COCO segmentation (polygons, compressed or uncompressed RLE) as compressed RLE."""
    if isinstance(segmentation, list):
        return rle_from_polygons(segmentation, height, width)
    if isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    return copy.deepcopy(segmentation)


def with_segmentations_as(gt: dict, fmt: str) -> dict:
    """A copy of `gt` whose non-crowd masks are all in one format: "rle" or "rle_uncompressed"."""
    gt = copy.deepcopy(gt)
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    for ann in gt["annotations"]:
        if ann["iscrowd"]:
            continue
        rle = as_compressed_rle(ann["segmentation"], *sizes[ann["image_id"]])
        ann["segmentation"] = uncompressed_rle(rle) if fmt == "rle_uncompressed" else rle
    return gt


# ---------------------------------------------------------------- the generator


class _Scene:
    def __init__(self, seed: int, iou_type: str, knobs: Knobs) -> None:
        gt_rng, det_rng, mask_rng, order_rng = np.random.default_rng(seed).spawn(4)
        self.gt_rng, self.det_rng, self.mask_rng, self.order_rng = (
            gt_rng, det_rng, mask_rng, order_rng)
        self.iou_type = iou_type
        self.k = knobs
        self.segm = iou_type == "segm"
        self.det_bbox = (bool(order_rng.integers(2)) if knobs.det_bbox_in_segm is None
                         else knobs.det_bbox_in_segm)
        self.shuffle = bool(order_rng.integers(2)) if knobs.shuffle is None else knobs.shuffle
        self.score_pool = [0.5, 0.25, round(float(det_rng.uniform()), 3),
                           float(det_rng.uniform()), 1.0, 0.0]

    # -- ground truth

    def categories(self) -> tuple[list[int], list[int], set[int]]:
        """All category ids (not contiguous), those that get ground truth, those never detected."""
        k = self.k
        ids = sorted(int(c) for c in self.gt_rng.choice(
            np.arange(1, 4 * k.n_categories + 2), k.n_categories, replace=False))
        without_gt = set(ids[:min(k.categories_without_gt, len(ids) - 1)])
        with_gt = [c for c in ids if c not in without_gt]
        n_without_dets = min(k.categories_without_detections, len(with_gt) - 1)
        without_dets = set(with_gt[len(with_gt) - n_without_dets:])
        return ids, with_gt, without_dets

    def box(self, width: int, height: int) -> tuple[list[float], float]:
        """A box in the image and its `area` field, in a random area range (or on a limit)."""
        rng, k = self.gt_rng, self.k
        on_limit = rng.uniform() < k.limit_area_rate
        if on_limit:
            side = float(rng.choice([32.0, 96.0]))
            w = h = side
        else:
            lo, hi = [(2.0, 31.5), (32.5, 95.5), (96.5, 0.9 * min(width, height))][
                int(rng.integers(3))]
            side = rng.uniform(lo, hi)
            aspect = rng.uniform(0.6, 1.6)
            w, h = min(side * aspect, width - 1.0), min(side / aspect, height - 1.0)
        x = rng.uniform(0, width - w)
        y = rng.uniform(0, height - h)
        box = [round(float(v), 2) for v in (x, y, w, h)]
        if on_limit and rng.uniform() < 0.5:
            area = side * side  # exactly 1024 or 9216, on the limit of two ranges
        elif rng.uniform() < k.area_field_is_box_rate:
            area = box[2] * box[3]
        else:
            area = round(box[2] * box[3] * rng.uniform(0.5, 0.95), 2)  # a mask's area
        return box, float(area)

    def segmentation(self, box: list[float], height: int, width: int,
                     crowd: bool) -> tuple[list | dict, list[list[float]]]:
        """The mask in one of the formats, and the polygons it was drawn from."""
        rng = self.mask_rng
        if crowd:
            polygons = polygons_in_box(rng, box, 1)
            rle = rle_from_polygons(polygons, height, width)
            return (uncompressed_rle(rle) if rng.uniform() < 0.7 else rle), polygons
        fmt = self.k.mask_formats[int(rng.integers(len(self.k.mask_formats)))]
        polygons = polygons_in_box(rng, box, int(rng.integers(2, 4)) if fmt == "multipolygon"
                                   else 1)
        if fmt in ("polygon", "multipolygon"):
            return polygons, polygons
        rle = rle_from_polygons(polygons, height, width)
        return (uncompressed_rle(rle) if fmt == "rle_uncompressed" else rle), polygons

    def ground_truth(self) -> dict:
        rng, k = self.gt_rng, self.k
        cat_ids, with_gt, self.without_dets = self.categories()
        self.cat_ids = cat_ids
        image_ids = sorted(int(i) for i in rng.choice(np.arange(1, 10 * k.n_images + 2),
                                                      k.n_images, replace=False))
        images = [image(i, int(rng.integers(200, 641)), int(rng.integers(200, 481)))
                  for i in image_ids]
        annotations = []
        for img in images:
            if rng.uniform() < k.empty_image_rate:
                continue
            for _ in range(int(rng.integers(1, k.max_objects_per_image + 1))):
                crowd = rng.uniform() < k.crowd_rate
                box, area = self.box(img["width"], img["height"])
                segmentation, shape = self.segmentation(box, img["height"], img["width"], crowd)
                annotations.append({
                    "image_id": img["id"],
                    "category_id": int(rng.choice(with_gt)),
                    "bbox": box,
                    "area": area,
                    "iscrowd": int(crowd),
                    "segmentation": segmentation,
                    "_shape": shape,
                })
        if self.shuffle:
            self.order_rng.shuffle(annotations)
            self.order_rng.shuffle(images)
        # ids start at 1 (the reference mishandles 0) and do not follow the list order
        self.shapes = {}
        for ann, ann_id in zip(annotations, rng.permutation(len(annotations)) + 1, strict=True):
            ann["id"] = int(ann_id)
            self.shapes[ann["id"]] = ann.pop("_shape")
        self.images = {img["id"]: img for img in images}
        return dataset(images, annotations, cat_ids)

    # -- detections

    def score(self, quality: float) -> float:
        rng = self.det_rng
        if rng.uniform() < self.k.tie_rate:
            return self.score_pool[int(rng.integers(len(self.score_pool)))]
        return float(np.clip(0.25 + 0.7 * quality + rng.normal(0, 0.15), 0.0, 1.0))

    def jitter(self, box: list[float]) -> list[float]:
        rng = self.det_rng
        x, y, w, h = box
        if rng.uniform() < self.k.threshold_rate:
            # same size, shifted so that the exact IoU is one of the thresholds
            t = float(rng.choice(IOU_THRESHOLDS))
            return [x + w * (1 - t) / (1 + t), y, w, h]
        sigma = float(rng.choice([0.02, 0.06, 0.15, 0.3]))
        nw, nh = w * np.exp(rng.normal(0, sigma)), h * np.exp(rng.normal(0, sigma))
        nx, ny = x + rng.normal(0, sigma) * w, y + rng.normal(0, sigma) * h
        digits = int(rng.choice([2, 3, 6]))
        return [round(float(v), digits) for v in (nx, ny, max(nw, 0.5), max(nh, 0.5))]

    def random_box(self, img: dict) -> list[float]:
        rng = self.det_rng
        if rng.uniform() < self.k.limit_area_rate:
            w = h = float(rng.choice([32.0, 96.0]))  # detection area exactly on a limit
        else:
            w = rng.uniform(3, 0.7 * img["width"])
            h = rng.uniform(3, 0.7 * img["height"])
        x, y = rng.uniform(0, img["width"] - w), rng.uniform(0, img["height"] - h)
        return [round(float(v), 2) for v in (x, y, w, h)]

    def detection_mask(self, box: list[float], img: dict, source: dict | None) -> dict:
        """The source object's shape moved to the detection's box, its outline a bit off."""
        rng = self.mask_rng
        x, y, w, h = box
        w, h = max(w, 1.0), max(h, 1.0)
        if source is None or source["iscrowd"]:
            polygons = polygons_in_box(rng, [x, y, w, h], 1)
        else:
            gx, gy, gw, gh = source["bbox"]
            polygons = []
            for polygon in self.shapes[source["id"]]:
                xs = x + (np.asarray(polygon[0::2]) - gx) * w / gw
                ys = y + (np.asarray(polygon[1::2]) - gy) * h / gh
                xs = xs + rng.normal(0, 0.03 * w, xs.size)
                ys = ys + rng.normal(0, 0.03 * h, ys.size)
                polygons.append([round(float(v), 2) for pair in zip(xs, ys, strict=True)
                                 for v in pair])
        return rle_from_polygons(polygons, img["height"], img["width"])

    def detections(self, gt: dict) -> list[dict]:
        rng, k = self.det_rng, self.k
        dets = []

        def add(image_id: int, category_id: int, box: list[float], score: float,
                source: dict | None = None) -> None:
            dets.append((detection(image_id, category_id, box, score), source))

        detectable = [c for c in self.cat_ids if c not in self.without_dets]
        for ann in gt["annotations"]:
            if ann["category_id"] in self.without_dets:
                continue
            if ann["iscrowd"]:
                # a crowd region is hit by several detections, each inside it
                x, y, w, h = ann["bbox"]
                for _ in range(int(rng.integers(2, 7))):
                    sw, sh = w * rng.uniform(0.1, 0.5), h * rng.uniform(0.1, 0.5)
                    box = [x + rng.uniform(0, w - sw), y + rng.uniform(0, h - sh), sw, sh]
                    add(ann["image_id"], ann["category_id"], [round(float(v), 2) for v in box],
                        self.score(0.6))
                continue
            if rng.uniform() < k.miss_rate:
                continue
            quality = rng.uniform()
            add(ann["image_id"], ann["category_id"], self.jitter(ann["bbox"]), self.score(quality),
                ann)
            if rng.uniform() < k.duplicate_rate:
                add(ann["image_id"], ann["category_id"], self.jitter(ann["bbox"]),
                    self.score(quality * 0.7), ann)
            if rng.uniform() < k.wrong_label_rate:
                add(ann["image_id"], int(rng.choice(detectable)), self.jitter(ann["bbox"]),
                    self.score(quality * 0.5), ann)
        for img in gt["images"]:
            for _ in range(int(rng.poisson(k.background_per_image))):
                add(img["id"], int(rng.choice(detectable)), self.random_box(img), self.score(0.1))
        for _ in range(k.dense_images):
            dets.extend(self.crowded_image(gt, detectable))
        if self.shuffle:
            self.order_rng.shuffle(dets)
        if self.segm:
            for det, source in dets:
                det["segmentation"] = self.detection_mask(det["bbox"], self.images[det["image_id"]],
                                                          source)
                if not self.det_bbox:
                    del det["bbox"]
        return [det for det, _ in dets]

    def crowded_image(self, gt: dict, detectable: list[int]) -> list[tuple[dict, dict | None]]:
        """More than 100 detections of one category on one image: the maxDets cap matters."""
        rng = self.det_rng
        if not detectable or not gt["images"]:
            return []
        img = gt["images"][int(rng.integers(len(gt["images"])))]
        category_id = int(rng.choice(detectable))
        objects = [a for a in gt["annotations"] if a["image_id"] == img["id"]
                   and a["category_id"] == category_id and not a["iscrowd"]]
        dets = []
        for _ in range(int(rng.integers(101, 141))):
            if objects and rng.uniform() < 0.5:
                source = objects[int(rng.integers(len(objects)))]
                box, quality = self.jitter(source["bbox"]), rng.uniform()
            else:
                source, box, quality = None, self.random_box(img), 0.05
            dets.append((detection(img["id"], category_id, box, self.score(quality)), source))
        return dets


def make_case(seed: int, iou_type: str = "bbox", **knobs: object) -> tuple[dict, list[dict]]:
    """A COCO ground truth dict and a results list, the same for the same seed and knobs."""
    scene = _Scene(seed, iou_type, Knobs(**knobs))
    gt = scene.ground_truth()
    return gt, scene.detections(gt)
