"""The front door: read an extracted dataset directory by kind and format, validate it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from training_runtime.data import report as codes
from training_runtime.data.coco import read_coco
from training_runtime.data.dataset import DatasetIndex
from training_runtime.data.folders import read_folders
from training_runtime.data.images import DEFAULT_LIMITS, ImageLimits
from training_runtime.data.report import ValidationReport
from training_runtime.data.voc import read_voc

SUPPORTED: dict[str, tuple[str, ...]] = {
    "classification": ("folders",),
    "detection": ("coco", "voc"),
    "segmentation": ("coco",),
}


def read_dataset(root: str | os.PathLike[str], kind: str, format: str, *,
                 limits: ImageLimits = DEFAULT_LIMITS,
                 partial: bool = False) -> tuple[DatasetIndex | None, ValidationReport]:
    """Read and validate the dataset extracted at `root`; never raises on bad data.

    The index is None when the report has errors, unless `partial` is set: then it is whatever
    could be read (for showing the label distribution of a refused dataset, never for training).
    """
    report = ValidationReport()
    index = _read(Path(root), kind, format, report, limits)
    if not report.ok and not partial:
        return None, report
    return index, report


def _read(root: Path, kind: str, fmt: str, report: ValidationReport,
          limits: ImageLimits) -> DatasetIndex | None:
    if fmt not in SUPPORTED.get(kind, ()):
        combos = "; ".join(f"{k}: {', '.join(v)}" for k, v in SUPPORTED.items())
        report.error(".", f"Kind {str(kind)[:32]!r} with format {str(fmt)[:32]!r} is not "
                     f"supported; use one of {combos}.", code=codes.UNSUPPORTED_FORMAT)
        return None
    if not root.is_dir() or root.is_symlink():
        report.error(".", "The dataset folder does not exist; upload the dataset again.",
                     code=codes.MISSING_FILE)
        return None
    if fmt == "folders":
        return read_folders(root, report, limits)
    if fmt == "coco":
        return read_coco(root, kind, report, limits)  # type: ignore[arg-type]
    return read_voc(root, report, limits)


def dataset_fields(index: DatasetIndex | None, report: ValidationReport) -> dict[str, Any]:
    """`{"image_count", "labels", "errors", "warnings"}` for the API's Dataset resource."""
    summary = index.summary() if index is not None else {"image_count": 0, "labels": []}
    return {**summary, **report.as_dict()}
