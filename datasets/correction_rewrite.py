"""Applying corrections to a dataset zip (E12): the rules a request must meet as a whole, the
format's editor for each image, and the new zip written member by member.

The data types and per-object checks are in `datasets.corrections`, the editors of each format
in `datasets.correction_formats`; this module uses both, and neither imports it.
Pure Python and the training_runtime readers' helpers: no Django here.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

from datasets import archive
from datasets.correction_formats import EDITORS
from datasets.corrections import (
    Change,
    Correction,
    Editor,
    ParentZip,
    Refused,
    check_label_name,
)


def _require_shape(kind: str, correction: Correction) -> None:
    name = correction.file_name
    if kind == "classification":
        if correction.objects is not None:
            raise Refused("annotations", f"{name}: a classification dataset takes a label per "
                          "image; send label, not annotations.")
        if correction.label is None:
            raise Refused("label", f"{name}: send the image's new label.")
    else:
        if correction.label is not None:
            raise Refused("label", f"{name}: a {kind} dataset takes the image's objects; send "
                          "annotations [{label, bbox}], not label.")
        if correction.objects is None:
            raise Refused("annotations", f"{name}: send the image's full list of objects as "
                          "annotations [{label, bbox: [x, y, w, h]}] ([] for none).")


def _labels_of(correction: Correction) -> set[str]:
    if correction.label is not None:
        return {correction.label}
    return {obj.label for obj in correction.objects or ()}


def _check_labels(editor: Editor, corrections: Sequence[Correction],
                  label_images: dict[str, int], allow_new_labels: bool,
                  field_name: str) -> None:
    for correction in corrections:
        for label in sorted(_labels_of(correction) - set(label_images)):
            check_label_name(label, field_name)
            if not allow_new_labels:
                known = ", ".join(repr(n) for n in label_images)
                raise Refused(field_name, f"Label {label!r} is not in the dataset (its labels: "
                              f"{known}); fix the label, or send allow_new_labels: true to add "
                              "it.")
            editor.check_new_label(label)


def _check_no_label_emptied(changes: Sequence[Change], label_images: dict[str, int],
                            field_name: str) -> None:
    left = dict(label_images)
    for change in changes:
        for label in change.labels_before - change.labels_after:
            left[label] = left.get(label, 0) - 1
        for label in change.labels_after - change.labels_before:
            left[label] = left.get(label, 0) + 1
    emptied = sorted(n for n, count in left.items() if count <= 0 < label_images.get(n, 0))
    if emptied:
        raise Refused(field_name, f"This would leave label(s) {', '.join(map(repr, emptied))} "
                      "without images, and the new version would fail validation; correct "
                      "another image to that label too, or upload a new version without it.")


# --- the rewrite ---------------------------------------------------------------------------------


def rewrite(source: Path, target: Path, work: Path, *, kind: str, fmt: str,
            label_images: dict[str, int], corrections: Sequence[Correction],
            allow_new_labels: bool, limits: archive.ZipLimits) -> list[Change]:
    """Write `target`, the zip at `source` with the corrections applied; what changed.

    Raises Refused (nothing written) or archive.UnsafeArchive (the stored zip is unusable).
    """
    with zipfile.ZipFile(source) as zf:
        parent = ParentZip(zf, limits, work)
        editor = EDITORS[fmt](parent, kind)
        images = [editor.locate(c.file_name) for c in corrections]
        twice = sorted({n for n in images if images.count(n) > 1})
        if twice:
            raise Refused("file_name", f"{twice[0]} is corrected twice in one request; send "
                          "each image once with its final annotations.")
        for correction in corrections:
            _require_shape(kind, correction)
        field_name = "label" if kind == "classification" else "annotations"
        _check_labels(editor, corrections, label_images, allow_new_labels, field_name)
        changes = [editor.apply(c, image) for c, image in zip(corrections, images, strict=True)]
        _check_no_label_emptied(changes, label_images, field_name)
        replaced, moved = editor.finish()
        _write(parent, target, replaced, moved)
    return changes


def _copy_info(info: zipfile.ZipInfo, name: str) -> zipfile.ZipInfo:
    out = zipfile.ZipInfo(name, info.date_time)
    out.compress_type = info.compress_type
    out.external_attr = info.external_attr
    out.create_system = info.create_system
    out.comment = info.comment
    out.file_size = info.file_size
    return out


def _write(parent: ParentZip, target: Path, replaced: dict[str, bytes],
           moved: dict[str, str]) -> None:
    """Every member in its order: replaced ones with new bytes, moved ones under a new name."""
    cut = len(parent.prefix)
    with zipfile.ZipFile(target, "x") as out:
        for member in parent.members:
            info = member.info
            if member.is_dir:
                out.writestr(_copy_info(info, info.filename), b"")
                continue
            rel = "/".join(member.parts[cut:]) if member.parts[:cut] == parent.prefix else None
            if rel is not None and rel in replaced:
                new = _copy_info(info, info.filename)
                out.writestr(new, replaced[rel])
                continue
            name = parent.full_name(moved[rel]) if rel is not None and rel in moved else (
                info.filename)
            new = _copy_info(info, name)
            with parent.zf.open(info) as src, out.open(
                    new, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as dst:
                shutil.copyfileobj(src, dst, archive.CHUNK_BYTES)
