"""Checks every reader shares once its index is built: empty data, unused labels, small data."""

from __future__ import annotations

from collections.abc import Callable

from training_runtime.data import report as codes
from training_runtime.data.dataset import DatasetIndex
from training_runtime.data.report import ValidationReport

MIN_RELIABLE_IMAGES = 100  # T10: under this the evaluation report is for reference only
FEW_IMAGES_PER_LABEL = 5
IMBALANCE_RATIO = 10.0


def check_index(index: DatasetIndex, report: ValidationReport,
                label_file: Callable[[str], str], data_file: str) -> None:
    """Add the shared errors and warnings; `label_file(name)` says which file declares a label,
    `data_file` which file or folder to blame for the dataset as a whole."""
    if not index.samples:
        report.error(data_file, "The dataset holds no usable images; add labelled images (see the "
                     "other messages for the files that were refused).", code=codes.EMPTY_DATASET)
        return
    distribution = index.label_distribution()
    for row in distribution:
        if row["image_count"] == 0:
            report.error(label_file(row["name"]), f"Label {row['name']!r} has no images; add "
                         "images for it or remove the label.", code=codes.LABEL_WITHOUT_IMAGES)
    if index.image_count < MIN_RELIABLE_IMAGES:
        report.warn(data_file, f"Only {index.image_count} images (fewer than "
                    f"{MIN_RELIABLE_IMAGES}); training proceeds, but the evaluation results will "
                    "be for reference only. Add images for a reliable evaluation.",
                    code=codes.FEW_IMAGES)
    used = [row for row in distribution if row["image_count"] > 0]
    for row in used:
        if row["image_count"] < FEW_IMAGES_PER_LABEL:
            report.warn(label_file(row["name"]), f"Label {row['name']!r} has only "
                        f"{row['image_count']} image(s); add at least {FEW_IMAGES_PER_LABEL} "
                        "for it to be learnt and evaluated.", code=codes.FEW_IMAGES_FOR_LABEL)
    if len(used) >= 2:
        most = max(used, key=lambda r: r["count"])
        least = min(used, key=lambda r: r["count"])
        if most["count"] >= IMBALANCE_RATIO * least["count"]:
            report.warn(data_file, f"Labels are imbalanced: {most['name']!r} has "
                        f"{most['count']}, {least['name']!r} only {least['count']}; add data for "
                        "the rare labels or expect them to be recognised less well.",
                        code=codes.LABEL_IMBALANCE)
