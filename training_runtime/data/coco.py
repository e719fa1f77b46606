"""Detection and instance segmentation as COCO JSON: `annotations.json` at the root, images
under `images/` (an image's `file_name` is relative to `images/`; an `images/` prefix is
accepted too).

Decisions: a declared category with no annotations is an error (issue 5: "a label with no
images"); an image without annotations is kept as a background image with one summary warning;
an image file under `images/` that the JSON does not list is ignored with a warning; missing
`width`/`height` on an image entry are taken from the file; crowd annotations (`iscrowd: 1`) are
kept and flagged. Problems in the JSON name `annotations.json` and the annotation id (or the
entry's position when it has no usable id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training_runtime.data import report as codes
from training_runtime.data.checks import check_index
from training_runtime.data.dataset import DatasetIndex, Sample, Scenario
from training_runtime.data.geometry import check_box, check_polygons, check_rle, is_number
from training_runtime.data.images import DEFAULT_LIMITS, ImageInfo, ImageLimits, probe_image
from training_runtime.data.paths import (
    FileTooLargeError,
    list_dir,
    read_bounded,
    regular_file_inside,
    relative,
    safe_member,
    why_unusable,
)
from training_runtime.data.report import ValidationReport

ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"
MAX_ANNOTATION_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 8
LAYOUT_HINT = f"a COCO zip holds {ANNOTATIONS_FILE} at its root and the images under {IMAGES_DIR}/"


def _is_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and 0 < len(value) <= 256)


def _short(value: object) -> str:
    """A short, safe rendering of a value from an untrusted file, for messages."""
    if isinstance(value, str):
        return repr(value[:64])
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)[:64]
    return f"<{type(value).__name__}>"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(path: Path, rel: str, report: ValidationReport,
              max_bytes: int) -> tuple[bool, Any]:
    """Parse a JSON file safely: (True, value), or (False, None) once the failure, with its line
    and column, is reported."""
    try:
        data = read_bounded(path, max_bytes)
    except FileTooLargeError:
        report.error(rel, f"The file is over the {max_bytes}-byte limit; split the dataset.",
                     code=codes.FILE_TOO_LARGE)
        return False, None
    except OSError as exc:
        report.error(rel, f"Cannot read the file ({exc.strerror}); upload it again.",
                     code=codes.UNREADABLE_FILE)
        return False, None
    try:
        return True, json.loads(data, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        report.error(rel, f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; "
                     "fix the file or export it again.", code=codes.MALFORMED_JSON,
                     line=exc.lineno)
    except UnicodeDecodeError:
        report.error(rel, "The file is not UTF-8 text; export it again as UTF-8 JSON.",
                     code=codes.MALFORMED_JSON)
    except RecursionError:
        report.error(rel, "The JSON nests too deeply to read; export it again.",
                     code=codes.MALFORMED_JSON)
    except ValueError as exc:  # NaN/Infinity, or integers too long to convert
        report.error(rel, f"Invalid JSON value ({exc}); fix the file or export it again.",
                     code=codes.MALFORMED_JSON)
    return False, None


def read_coco(root: Path, scenario: Scenario, report: ValidationReport,
              limits: ImageLimits = DEFAULT_LIMITS) -> DatasetIndex | None:
    """Read and validate a COCO dataset; the index holds only the usable images and objects."""
    path = root / ANNOTATIONS_FILE
    if not regular_file_inside(root, path):
        report.error(ANNOTATIONS_FILE, f"{ANNOTATIONS_FILE} is missing; {LAYOUT_HINT}.",
                     code=codes.MISSING_FILE)
        return None
    parsed, doc = load_json(path, ANNOTATIONS_FILE, report, MAX_ANNOTATION_BYTES)
    if not parsed:
        return None
    if not isinstance(doc, dict):
        report.error(ANNOTATIONS_FILE, "The top level must be an object with \"images\", "
                     "\"annotations\" and \"categories\"; export it again in COCO format.",
                     code=codes.INVALID_FIELD)
        return None
    lists = {}
    for key in ("images", "annotations", "categories"):
        value = doc.get(key)
        if not isinstance(value, list):
            what = "is missing" if value is None else "must be a list"
            report.error(ANNOTATIONS_FILE, f"\"{key}\" {what}; a COCO file needs \"images\", "
                         "\"annotations\" and \"categories\" lists.", code=codes.MISSING_FIELD)
            continue
        lists[key] = value
    if len(lists) < 3:
        return None
    reader = _CocoReader(root, scenario, report, limits)
    return reader.read(lists["images"], lists["annotations"], lists["categories"])


class _CocoReader:
    def __init__(self, root: Path, scenario: Scenario, report: ValidationReport,
                 limits: ImageLimits) -> None:
        self.root, self.scenario, self.report, self.limits = root, scenario, report, limits
        self.label_of: dict[int, int] = {}
        self.declared: set[Any] = set()  # image ids declared once, usable or not
        self.samples: dict[Any, Sample] = {}

    def err(self, message: str, code: str, annotation_id: Any | None = None) -> None:
        self.report.error(ANNOTATIONS_FILE, message, code=code, annotation_id=annotation_id)

    def read(self, images: list[Any], annotations: list[Any],
             categories: list[Any]) -> DatasetIndex:
        labels = self.read_categories(categories)
        self.read_images(images)
        self.read_annotations(annotations)
        samples = sorted(self.samples.values(), key=lambda s: s.path)
        empty = sum(1 for s in samples if not s.boxes)
        if empty:
            self.report.warn(ANNOTATIONS_FILE, f"{empty} image(s) have no annotations; they are "
                             "used as background images. Annotate them if they contain objects.",
                             code=codes.UNANNOTATED_IMAGE)
        index = DatasetIndex(self.root, self.scenario, labels, samples)
        check_index(index, self.report, label_file=lambda _: ANNOTATIONS_FILE,
                    data_file=ANNOTATIONS_FILE)
        return index

    def read_categories(self, categories: list[Any]) -> list[str]:
        by_id: dict[int, str] = {}
        names: set[str] = set()
        for n, cat in enumerate(categories):
            where = f"categories[{n}]"
            if not isinstance(cat, dict):
                self.err(f"{where} must be an object with \"id\" and \"name\".",
                         codes.INVALID_FIELD)
                continue
            cid, name = cat.get("id"), cat.get("name")
            if not isinstance(cid, int) or isinstance(cid, bool):
                self.err(f"{where} needs an integer \"id\"; give each category one.",
                         codes.MISSING_FIELD)
            elif not isinstance(name, str) or not name.strip() or len(name) > 128:
                self.err(f"{where} (id {cid}) needs a \"name\" of 1 to 128 characters.",
                         codes.MISSING_LABEL)
            elif cid in by_id:
                self.err(f"{where}: category id {cid} is declared twice; give each category its "
                         "own id.", codes.DUPLICATE_LABEL)
            elif name in names:
                self.err(f"{where}: category name {name!r} is declared twice; merge the two "
                         "categories or rename one.", codes.DUPLICATE_LABEL)
            else:
                by_id[cid] = name
                names.add(name)
        ordered = sorted(by_id)
        self.label_of = {cid: i for i, cid in enumerate(ordered)}
        return [by_id[cid] for cid in ordered]

    def read_images(self, images: list[Any]) -> None:
        images_dir = self.root / IMAGES_DIR
        seen_paths: set[str] = set()
        for n, entry in enumerate(images):
            where = f"images[{n}]"
            if not isinstance(entry, dict):
                self.err(f"{where} must be an object with \"id\" and \"file_name\".",
                         codes.INVALID_FIELD)
                continue
            image_id, file_name = entry.get("id"), entry.get("file_name")
            if not _is_id(image_id):
                self.err(f"{where} needs an \"id\" (an integer); give each image one.",
                         codes.MISSING_FIELD)
                continue
            if image_id in self.declared:
                self.err(f"{where}: image id {image_id!r} is used twice; give each image its "
                         "own id (the second entry was ignored).", codes.DUPLICATE_IMAGE_ID)
                continue
            self.declared.add(image_id)
            if not isinstance(file_name, str):
                self.err(f"{where} (image id {image_id!r}) needs a \"file_name\".",
                         codes.MISSING_FIELD)
                continue
            name = file_name.replace("\\", "/")
            if name.startswith(IMAGES_DIR + "/"):
                name = name[len(IMAGES_DIR) + 1:]
            path = safe_member(images_dir, name)
            if path is None:
                self.err(f"{where} (image id {image_id!r}): file_name {file_name[:200]!r} points "
                         f"outside {IMAGES_DIR}/; use a relative name like \"0001.jpg\".",
                         codes.UNSAFE_PATH)
                continue
            rel = relative(self.root, path)
            if rel in seen_paths:
                self.err(f"{where} (image id {image_id!r}): {rel} is listed twice; list each "
                         "image once.", codes.DUPLICATE_IMAGE)
                continue
            seen_paths.add(rel)
            if not regular_file_inside(self.root, path):
                code, why = why_unusable(self.root, path)
                self.report.error(rel, f"Image file listed in {ANNOTATIONS_FILE} (image id "
                                  f"{image_id!r}) {why}; {LAYOUT_HINT}.", code=code)
                continue
            info, issue = probe_image(path, rel, self.limits)
            if issue is not None:
                self.report.add(issue)
                continue
            assert info is not None
            if self._size_matches(entry, info, where, image_id, rel):
                self.samples[image_id] = Sample(path=rel, width=info.width, height=info.height,
                                                source_id=image_id)
        self._warn_unlisted(images_dir, seen_paths)

    def _size_matches(self, entry: dict[str, Any], info: ImageInfo, where: str,
                      image_id: Any, rel: str) -> bool:
        width, height = entry.get("width", info.width), entry.get("height", info.height)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (width, height)):
            self.err(f"{where} (image id {image_id!r}): \"width\" and \"height\" must be "
                     "integers.", codes.INVALID_FIELD)
            return False
        if (width, height) != (info.width, info.height):
            self.err(f"{where} (image id {image_id!r}) says {width}x{height}, but {rel} is "
                     f"{info.width}x{info.height}; fix width/height or re-export the "
                     "annotations for this image.", codes.SIZE_MISMATCH)
            return False
        return True

    def _warn_unlisted(self, images_dir: Path, listed: set[str]) -> None:
        if not images_dir.is_dir() or images_dir.is_symlink():
            return
        stack = [(images_dir, 0)]
        while stack:
            folder, depth = stack.pop()
            listing = list_dir(self.root, folder, self.report)
            for path in listing.files:
                rel = relative(self.root, path)
                if rel not in listed:
                    self.report.warn(rel, f"Not listed in {ANNOTATIONS_FILE}; it was ignored. "
                                     "Add it to \"images\" or remove it.",
                                     code=codes.UNLISTED_IMAGE)
            if depth < MAX_DEPTH:
                stack.extend((d, depth + 1) for d in reversed(listing.dirs))

    def read_annotations(self, annotations: list[Any]) -> None:
        seen: set[Any] = set()
        for n, ann in enumerate(annotations):
            where = f"annotations[{n}]"
            if not isinstance(ann, dict):
                self.err(f"{where} must be an object.", codes.INVALID_FIELD)
                continue
            ann_id = ann.get("id")
            if not _is_id(ann_id):
                self.err(f"{where} needs an \"id\"; give each annotation one.",
                         codes.MISSING_FIELD)
                continue
            if ann_id in seen:
                self.err(f"Annotation id {ann_id!r} is used twice ({where}); give each "
                         "annotation its own id.", codes.DUPLICATE_ANNOTATION_ID, ann_id)
                continue
            seen.add(ann_id)
            self._read_annotation(ann, ann_id)

    def _read_annotation(self, ann: dict[str, Any], ann_id: Any) -> None:
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if not _is_id(image_id) or image_id not in self.declared:
            self.err(f"Annotation {ann_id!r} refers to image id {_short(image_id)}, which "
                     "\"images\" does not declare; fix image_id or remove the annotation.",
                     codes.UNKNOWN_IMAGE_ID, ann_id)
            return
        if category_id is None:
            self.err(f"Annotation {ann_id!r} has no category_id; give it one of the declared "
                     "categories.", codes.MISSING_LABEL, ann_id)
            return
        if not _is_id(category_id) or category_id not in self.label_of:
            self.err(f"Annotation {ann_id!r} has category_id {_short(category_id)}, which "
                     "\"categories\" does not declare; declare it or fix the annotation.",
                     codes.UNKNOWN_LABEL, ann_id)
            return
        sample = self.samples.get(image_id)
        if sample is None:  # the image itself was refused; its issue is already reported
            return
        bbox = ann.get("bbox")
        if bbox is None:
            self.err(f"Annotation {ann_id!r} has no bbox; add [x, y, width, height].",
                     codes.MISSING_FIELD, ann_id)
            return
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            self.err(f"Annotation {ann_id!r}: bbox must be 4 numbers [x, y, width, height].",
                     codes.INVALID_FIELD, ann_id)
            return
        x, y, w, h = (float(v) for v in bbox)
        problem = check_box(x, y, x + w, y + h, sample.width, sample.height)
        segmentation = None
        if problem is None and self.scenario == "segmentation":
            segmentation = ann.get("segmentation")
            problem = self._check_segmentation(segmentation, sample)
        if problem is not None:
            code, message = problem
            self.err(f"Annotation {ann_id!r} on {sample.path}: {message}", code, ann_id)
            return
        sample.boxes.append((x, y, x + w, y + h))
        sample.box_labels.append(self.label_of[category_id])
        sample.iscrowd.append(ann.get("iscrowd") in (1, True))
        if segmentation is not None:
            sample.segmentations.append(segmentation)

    @staticmethod
    def _check_segmentation(value: Any, sample: Sample) -> tuple[str, str] | None:
        if value is None or value == [] or value == {}:
            return codes.MISSING_SEGMENTATION, ("No segmentation; instance segmentation needs a "
                                                "polygon or RLE mask for every object.")
        if isinstance(value, list):
            return check_polygons(value, sample.width, sample.height)
        if isinstance(value, dict):
            return check_rle(value, sample.width, sample.height)
        return codes.INVALID_POLYGON, "segmentation must be a list of polygons or an RLE object."
