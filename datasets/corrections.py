"""Correcting annotations inside a dataset zip (E12): the named images' label or objects are
rewritten in the dataset's own format and every other member is copied as it is. This module
holds the corrections, the checks of their objects and the reading of the parent zip; the
rewrite itself is `datasets.correction_rewrite.rewrite`:

    changes = rewrite(parent_zip, new_zip, work, kind="detection", fmt="coco",
                      label_images={"cat": 2, "dog": 1}, allow_new_labels=False,
                      corrections=[Correction("3.png", objects=(Obj("cat", (3, 3, 8, 8)),))])

Rules, each refused with `Refused(field, message)` before anything is written:
- `file_name` names an image as the dataset and its evaluations name it (folders: `cat/1.png`;
  coco: the `file_name` in annotations.json, with or without `images/`; voc:
  `JPEGImages/0001.jpg` or `0001.jpg`); each image once per request.
- classification takes `label`; detection and segmentation take `annotations`, the image's full
  new list of objects (empty: the image becomes a background image).
- a label the dataset does not have is refused unless `allow_new_labels`; a correction never
  leaves a label of the dataset without images (the new version would fail validation).
- boxes are `[x, y, w, h]` in pixels, positive in size, inside the image (the same 1-pixel
  tolerance as validation). Polygons are optional; an object sent without one keeps the mask of
  the object it replaces with the same box; a segmentation dataset refuses a changed box
  without a polygon. VOC holds boxes only.
- a correction that changes nothing is refused.

Pure Python and the training_runtime readers' helpers: no Django here.
"""

from __future__ import annotations

import math
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from datasets import archive
from training_runtime.data.geometry import check_box, check_polygons
from training_runtime.data.images import probe_image

MAX_LABEL_LENGTH = 128
BOX_EPSILON = 1e-6  # two boxes closer than this on every side are the same box


class Refused(Exception):
    """A correction that cannot be applied; `field` is the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Obj:
    """One object of a detection or segmentation image: label, [x, y, w, h], polygons."""

    label: str
    bbox: tuple[float, float, float, float]
    segmentation: list[list[float]] | None = None

    def shown(self) -> dict[str, Any]:
        """The object as events and the API show it."""
        out: dict[str, Any] = {"label": self.label, "bbox": [number(v) for v in self.bbox]}
        if self.segmentation is not None:
            out["segmentation"] = [[number(v) for v in poly] for poly in self.segmentation]
        return out


@dataclass(frozen=True)
class Correction:
    """What one image should become: a label (classification) or its objects."""

    file_name: str
    label: str | None = None
    objects: tuple[Obj, ...] | None = None


@dataclass(frozen=True)
class Change:
    """What a correction did: the image before and after, and where it now lives."""

    file_name: str
    new_file_name: str
    before: dict[str, Any]
    after: dict[str, Any]
    labels_before: frozenset[str] = field(default=frozenset(), compare=False)
    labels_after: frozenset[str] = field(default=frozenset(), compare=False)


def number(value: float) -> int | float:
    """A coordinate as JSON shows it: an integer when it is one."""
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def same_box(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(abs(float(x) - float(y)) <= BOX_EPSILON for x, y in zip(a, b, strict=True))


def norm_path(name: str) -> str:
    """A member or file name as POSIX parts joined by `/` (backslashes and `./` folded)."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


# --- the parent zip ------------------------------------------------------------------------------


def root_prefix(members: Sequence[archive.Member]) -> tuple[str, ...]:
    """The folder wrapping the whole dataset, as `archive.dataset_root` finds it, or ()."""

    def visible(name: str) -> bool:
        return not name.startswith(".") and name not in archive.SKIPPED_NAMES

    tops = {m.parts[0] for m in members if visible(m.parts[0])}
    if len(tops) != 1:
        return ()
    top = next(iter(tops))
    inside = [m for m in members if m.parts[0] == top and len(m.parts) > 1]
    is_dir = bool(inside) or any(m.parts == (top,) and m.is_dir for m in members)
    has_json = any(m.parts == (top, "annotations.json") and not m.is_dir for m in inside)
    has_folder = any(visible(m.parts[1]) and (len(m.parts) > 2 or m.is_dir) for m in inside)
    looks_through = has_json or has_folder
    return (top,) if is_dir and looks_through else ()


class ParentZip:
    """The parent version's zip: its files by path below the dataset root."""

    def __init__(self, zf: zipfile.ZipFile, limits: archive.ZipLimits, work: Path) -> None:
        self.zf, self.work = zf, work
        self.members = archive.inspect(zf, limits)
        self.prefix = root_prefix(self.members)
        cut = len(self.prefix)
        self.files = {"/".join(m.parts[cut:]): m for m in self.members
                      if not m.is_dir and m.parts[:cut] == self.prefix}

    def read(self, rel: str) -> bytes:
        with self.zf.open(self.files[rel].info) as stream:
            return stream.read()

    def full_name(self, rel: str) -> str:
        """The member name of a new member at `rel` below the dataset root."""
        return "/".join((*self.prefix, rel))

    def image_size(self, rel: str) -> tuple[int, int]:
        """An image's width and height as displayed (EXIF orientation applied)."""
        local = self.work / "probe" / Path(rel).name
        local.parent.mkdir(exist_ok=True)
        with self.zf.open(self.files[rel].info) as stream, open(local, "wb") as out:
            shutil.copyfileobj(stream, out, archive.CHUNK_BYTES)
        try:
            info, issue = probe_image(local, rel)
        finally:
            local.unlink()
        if info is None:
            raise Refused("file_name", f"{rel} cannot be read as an image "
                          f"({issue.message if issue else 'unknown'}).")
        return info.width, info.height


class Editor(Protocol):
    """One format's way of finding an image and rewriting its annotations."""

    def locate(self, file_name: str) -> str: ...
    def check_new_label(self, label: str) -> None: ...
    def apply(self, correction: Correction, image: str) -> Change: ...
    def finish(self) -> tuple[dict[str, bytes], dict[str, str]]: ...


# --- checks every format shares ------------------------------------------------------------------


def check_label_name(label: str, field_name: str) -> None:
    if not label.strip() or label != label.strip() or len(label) > MAX_LABEL_LENGTH:
        raise Refused(field_name, f"Label {label[:MAX_LABEL_LENGTH]!r} must be 1 to "
                      f"{MAX_LABEL_LENGTH} characters without spaces around it.")
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise Refused(field_name, f"Label {label!r} holds a control character; rename it.")


def checked_objects(objects: Sequence[Obj], width: int, height: int, *,
                    polygons_allowed: bool) -> None:
    """Refuse (on `annotations`) a box or polygon that validation would refuse."""
    for n, obj in enumerate(objects):
        where = f"annotations[{n}] ({obj.label!r})"
        if not all(math.isfinite(v) for v in obj.bbox):
            raise Refused("annotations", f"{where}: bbox must be 4 finite numbers [x, y, w, h].")
        x, y, w, h = obj.bbox
        if w <= 0 or h <= 0:
            raise Refused("annotations", f"{where}: bbox width and height must be positive; "
                          f"got {number(w)}x{number(h)}.")
        problem = check_box(x, y, x + w, y + h, width, height)
        if problem is not None:
            raise Refused("annotations", f"{where}: {problem[1]}")
        if obj.segmentation is not None:
            if not polygons_allowed:
                raise Refused("annotations", f"{where}: this dataset holds boxes only; send no "
                              "segmentation.")
            problem = check_polygons(obj.segmentation, width, height)
            if problem is not None:
                raise Refused("annotations", f"{where}: {problem[1]}")

