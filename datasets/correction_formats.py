"""How each dataset format finds an image and rewrites its annotations (see corrections.py).

folders: the image moves into the new label's folder (renamed `name-2.jpg` if that folder
already holds its name). coco: the image's entries in annotations.json are replaced, a new label
becomes a new category; an object keeping its box keeps its annotation (id, mask, iscrowd).
voc: the image's XML gets the new <object> list, an object keeping its box keeps its element;
a new label is added to labels.txt when the dataset declares its labels there.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from datasets.corrections import (
    Change,
    Correction,
    Obj,
    ParentZip,
    Refused,
    checked_objects,
    norm_path,
    number,
    same_box,
)
from training_runtime.data.coco import ANNOTATIONS_FILE
from training_runtime.data.images import has_image_extension
from training_runtime.data.paths import is_skipped
from training_runtime.data.voc import ANNOTATIONS_DIR, IMAGES_DIR, LABELS_FILE
from training_runtime.data.xmlsafe import parse_xml


def _unchanged(before: list[dict[str, Any]], objects: tuple[Obj, ...]) -> bool:
    """The new objects are the old ones (same labels and boxes, in any order, no new mask)."""
    if len(before) != len(objects) or any(o.segmentation is not None for o in objects):
        return False
    left = list(before)
    for obj in objects:
        match = next((b for b in left if b["label"] == obj.label
                      and same_box(b["bbox"], obj.bbox)), None)
        if match is None:
            return False
        left.remove(match)
    return True


def _nothing_to_correct(image: str) -> Refused:
    return Refused("annotations", f"{image}: these are already its annotations; nothing to "
                   "correct.")


def _not_found(file_name: str, example: str) -> Refused:
    return Refused("file_name", f"{file_name[:200]!r} is not an image of this dataset; name it "
                   f"as the dataset and its evaluations do, like {example!r}.")


def _change(image: str, new_name: str, before: list[dict[str, Any]],
            objects: tuple[Obj, ...]) -> Change:
    return Change(image, new_name, {"annotations": before},
                  {"annotations": [o.shown() for o in objects]},
                  frozenset(b["label"] for b in before), frozenset(o.label for o in objects))


class FoldersEditor:
    """Classification as one folder per label."""

    def __init__(self, parent: ParentZip, kind: str) -> None:
        self.parent = parent
        self.taken = set(parent.files)
        self.top_files = {rel for rel in parent.files if "/" not in rel}
        self.moved: dict[str, str] = {}

    def locate(self, file_name: str) -> str:
        rel = norm_path(file_name)
        parts = rel.split("/")
        if (len(parts) != 2 or rel not in self.parent.files or any(map(is_skipped, parts))
                or not has_image_extension(Path(rel))):
            raise _not_found(file_name, "cat/0001.jpg")
        return rel

    def check_new_label(self, label: str) -> None:
        if ("/" in label or "\\" in label or is_skipped(label) or label == ".."
                or label in self.top_files):
            raise Refused("label", f"Label {label!r} cannot be a folder name here; a new label "
                          "must not contain / or \\, start with a dot, or name a file at the "
                          "top of the dataset.")

    def apply(self, correction: Correction, image: str) -> Change:
        old, name = image.split("/")
        new = correction.label
        assert new is not None
        if new == old:
            raise Refused("label", f"{image} is already labelled {old!r}; nothing to correct.")
        stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
        target, n = f"{new}/{name}", 2
        while target in self.taken:
            target, n = f"{new}/{stem}-{n}{suffix}", n + 1
        self.moved[image] = target
        self.taken.add(target)
        return Change(image, target, {"label": old}, {"label": new}, frozenset({old}),
                      frozenset({new}))

    def finish(self) -> tuple[dict[str, bytes], dict[str, str]]:
        return {}, self.moved


def _coco_key(name: str) -> str:
    key = norm_path(name)
    return key[len("images/"):] if key.startswith("images/") else key


def _polygon_area(polygons: list[list[float]]) -> float:
    total = 0.0
    for poly in polygons:
        xs, ys = poly[0::2], poly[1::2]
        total += abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))) / 2
    return total


class CocoEditor:
    """Detection and segmentation as COCO JSON."""

    def __init__(self, parent: ParentZip, kind: str) -> None:
        self.parent, self.kind = parent, kind
        self.doc = json.loads(parent.read(ANNOTATIONS_FILE))
        self.images = {_coco_key(e["file_name"]): e for e in self.doc["images"]}
        self.category_name = {c["id"]: c["name"] for c in self.doc["categories"]}
        self.category_id = {name: cid for cid, name in self.category_name.items()}
        self.annotations_of: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for ann in self.doc["annotations"]:
            self.annotations_of[ann["image_id"]].append(ann)
        ids = [a["id"] for a in self.doc["annotations"]
               if isinstance(a["id"], int) and not isinstance(a["id"], bool)]
        self.next_id = max(ids, default=0) + 1
        self.new_annotations: dict[Any, list[dict[str, Any]]] = {}

    def locate(self, file_name: str) -> str:
        key = _coco_key(file_name)
        if key not in self.images:
            raise _not_found(file_name, "0001.jpg")
        return key

    def check_new_label(self, label: str) -> None:
        return None

    def _category(self, label: str) -> int:
        if label not in self.category_id:
            cid = max(self.category_name, default=0) + 1
            self.doc["categories"].append({"id": cid, "name": label})
            self.category_name[cid], self.category_id[label] = label, cid
        return self.category_id[label]

    def apply(self, correction: Correction, image: str) -> Change:
        entry = self.images[image]
        objects = correction.objects or ()
        width, height = entry.get("width"), entry.get("height")
        if width is None or height is None:
            width, height = self.parent.image_size(f"images/{image}")
        checked_objects(objects, width, height, polygons_allowed=True)
        old = self.annotations_of.get(entry["id"], [])
        before = [{"label": self.category_name[a["category_id"]],
                   "bbox": [number(v) for v in a["bbox"]]} for a in old]
        if _unchanged(before, objects):
            raise _nothing_to_correct(image)
        unused, new = list(old), []
        for n, obj in enumerate(objects):
            match = next((a for a in unused if same_box(a["bbox"], obj.bbox)), None)
            if match is not None:
                unused.remove(match)
                ann = dict(match)
            else:
                ann = {"id": self.next_id, "image_id": entry["id"], "iscrowd": 0}
                self.next_id += 1
            ann["category_id"] = self._category(obj.label)
            ann["bbox"] = [number(v) for v in obj.bbox]
            if obj.segmentation is not None:
                ann["segmentation"] = [[number(v) for v in p] for p in obj.segmentation]
                ann["area"] = number(round(_polygon_area(obj.segmentation), 4))
            elif match is None:
                if self.kind == "segmentation":
                    raise Refused("annotations", f"annotations[{n}] ({obj.label!r}) on {image}:"
                                  " a segmentation dataset needs a polygon for a new or moved "
                                  "box; send segmentation [[x1, y1, x2, y2, ...]].")
                ann["segmentation"] = []
                ann["area"] = number(obj.bbox[2] * obj.bbox[3])
            new.append(ann)
        self.new_annotations[entry["id"]] = new
        return _change(image, image, before, objects)

    def finish(self) -> tuple[dict[str, bytes], dict[str, str]]:
        out, placed = [], set()
        for ann in self.doc["annotations"]:
            image_id = ann["image_id"]
            if image_id not in self.new_annotations:
                out.append(ann)
            elif image_id not in placed:  # the new list takes the place of the old one
                out.extend(self.new_annotations[image_id])
                placed.add(image_id)
        for image_id, anns in self.new_annotations.items():
            if image_id not in placed:
                out.extend(anns)
        self.doc["annotations"] = out
        return {ANNOTATIONS_FILE: json.dumps(self.doc, ensure_ascii=False).encode()}, {}


def _text(parent: ET.Element | None, tag: str) -> str | None:
    child = parent.find(tag) if parent is not None else None
    return None if child is None or child.text is None else child.text.strip()


def _coords(obj: ET.Element) -> list[float]:
    box = obj.find("bndbox")
    return [float(_text(box, t) or 0) for t in ("xmin", "ymin", "xmax", "ymax")]


def _voc_object(obj: Obj) -> ET.Element:
    element = ET.Element("object")
    for tag, text in (("name", obj.label), ("pose", "Unspecified"), ("truncated", "0"),
                      ("difficult", "0")):
        ET.SubElement(element, tag).text = text
    box = ET.SubElement(element, "bndbox")
    x, y, w, h = obj.bbox
    for tag, value in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
        ET.SubElement(box, tag).text = str(number(value))
    return element


class VocEditor:
    """Detection as Pascal VOC: one XML per image."""

    def __init__(self, parent: ParentZip, kind: str) -> None:
        self.parent = parent
        self.xmls = sorted(rel for rel in parent.files
                           if rel.startswith(ANNOTATIONS_DIR + "/") and rel.count("/") == 1
                           and rel.lower().endswith(".xml")
                           and not is_skipped(rel[len(ANNOTATIONS_DIR) + 1:]))
        self.xml_of: dict[str, str] = {}
        self.scanned = False
        self.declared: str | None = None
        if LABELS_FILE in parent.files:
            self.declared = parent.read(LABELS_FILE).decode("utf-8-sig")
        self.added: list[str] = []
        self.replaced: dict[str, bytes] = {}

    def _image_of(self, xml: str) -> str:
        """The image an XML annotates, found as the VOC reader finds it."""
        filename = _text(parse_xml(self.parent.read(xml)).root, "filename")
        if filename:
            return f"{IMAGES_DIR}/{norm_path(filename)}"
        stem = PurePosixPath(xml).stem
        candidates = [f"{IMAGES_DIR}/{stem}{ext}" for ext in (".jpg", ".jpeg", ".png")]
        return next((c for c in candidates if c in self.parent.files), candidates[0])

    def locate(self, file_name: str) -> str:
        key = norm_path(file_name)
        image = key if key.startswith(IMAGES_DIR + "/") else f"{IMAGES_DIR}/{key}"
        if image not in self.parent.files:
            raise _not_found(file_name, f"{IMAGES_DIR}/0001.jpg")
        if image not in self.xml_of:
            guess = f"{ANNOTATIONS_DIR}/{PurePosixPath(image).stem}.xml"
            if guess in self.xmls and self._image_of(guess) == image:
                self.xml_of[image] = guess
            elif not self.scanned:
                self.scanned = True
                for xml in self.xmls:
                    self.xml_of.setdefault(self._image_of(xml), xml)
        if image not in self.xml_of:
            raise Refused("file_name", f"{image} has no annotation file in {ANNOTATIONS_DIR}/, "
                          "so it is not part of the dataset; upload a version with its XML.")
        return image

    def check_new_label(self, label: str) -> None:
        if self.declared is not None and label not in self.added:
            self.added.append(label)

    def apply(self, correction: Correction, image: str) -> Change:
        xml = self.xml_of[image]
        root = parse_xml(self.parent.read(xml)).root
        objects = correction.objects or ()
        size = root.find("size")
        if size is not None:
            width, height = (int(float(_text(size, t) or 0)) for t in ("width", "height"))
        else:
            width, height = self.parent.image_size(image)
        checked_objects(objects, width, height, polygons_allowed=False)
        parents = {child: p for p in root.iter() for child in p}
        old = list(root.iter("object"))
        boxes = [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in map(_coords, old)]
        before = [{"label": _text(o, "name"), "bbox": [number(v) for v in box]}
                  for o, box in zip(old, boxes, strict=True)]
        if _unchanged(before, objects):
            raise _nothing_to_correct(image)
        children = list(root)
        at = next((children.index(o) for o in old if parents[o] is root), len(children))
        for element in old:
            parents[element].remove(element)
        unused = list(zip(old, boxes, strict=True))
        for n, obj in enumerate(objects):
            match = next((pair for pair in unused if same_box(pair[1], obj.bbox)), None)
            if match is not None:
                unused.remove(match)
                element = match[0]
                element.find("name").text = obj.label  # type: ignore[union-attr]
            else:
                element = _voc_object(obj)
            root.insert(at + n, element)
        self.replaced[xml] = ET.tostring(root, encoding="utf-8")
        return _change(image, image, before, objects)

    def finish(self) -> tuple[dict[str, bytes], dict[str, str]]:
        if self.declared is not None and self.added:
            text = self.declared if self.declared.endswith("\n") or not self.declared else (
                self.declared + "\n")
            self.replaced[LABELS_FILE] = (text + "".join(f"{n}\n" for n in self.added)).encode()
        return self.replaced, {}


EDITORS: dict[str, type] = {"folders": FoldersEditor, "coco": CocoEditor, "voc": VocEditor}
