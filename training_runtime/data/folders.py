"""Classification as one folder per label: `root/<label>/<image>`.

Decisions: labels are the top-level folder names, sorted. Files directly in the root and folders
nested inside a label folder are ignored with a warning (their label would be ambiguous). Files
with other extensions are ignored with a warning; a file with an image extension that does not
decode is an error. Hidden files and `__MACOSX/` are skipped silently. Fewer than two labels is an
error: a classifier needs two.
"""

from __future__ import annotations

from pathlib import Path

from training_runtime.data import report as codes
from training_runtime.data.checks import check_index
from training_runtime.data.dataset import DatasetIndex, Sample
from training_runtime.data.images import (
    DEFAULT_LIMITS,
    EXTENSIONS_TEXT,
    ImageLimits,
    has_image_extension,
    probe_image,
)
from training_runtime.data.paths import list_dir, relative
from training_runtime.data.report import ValidationReport

MAX_LABEL_LENGTH = 128


def read_folders(root: Path, report: ValidationReport,
                 limits: ImageLimits = DEFAULT_LIMITS) -> DatasetIndex:
    """Read and validate a classification dataset; the index holds only the usable images."""
    top = list_dir(root, root, report)
    for path in top.files:
        report.warn(relative(root, path), "File outside any label folder; it was ignored. Put "
                    "each image in the folder named after its label.", code=codes.IGNORED_FILE)
    labels: list[str] = []
    for folder in top.dirs:
        name = folder.name
        if len(name) > MAX_LABEL_LENGTH or not name.strip():
            report.error(f"{name[:MAX_LABEL_LENGTH]}/", f"Label folder names must be 1 to "
                         f"{MAX_LABEL_LENGTH} characters; rename this folder.",
                         code=codes.INVALID_FIELD)
            continue
        labels.append(name)
    index = DatasetIndex(root=root, scenario="classification", labels=labels, samples=[])
    for label_index, name in enumerate(labels):
        _read_label_folder(root, root / name, label_index, index, report, limits)
    if 0 < len(labels) < 2:
        report.error(".", f"Classification needs at least 2 labels; found {len(labels)} "
                     f"({', '.join(labels)}). Add a folder per label; if your zip wraps the "
                     "label folders in one top folder, zip the label folders themselves.",
                     code=codes.TOO_FEW_LABELS)
    check_index(index, report, label_file=lambda name: f"{name}/", data_file=".")
    return index


def _read_label_folder(root: Path, folder: Path, label_index: int, index: DatasetIndex,
                       report: ValidationReport, limits: ImageLimits) -> None:
    listing = list_dir(root, folder, report)
    for sub in listing.dirs:
        report.warn(relative(root, sub) + "/", "Folder nested inside a label folder; it was "
                    "ignored. Move its images up into the label folder, or make it a label "
                    "folder of its own at the top level.", code=codes.NESTED_FOLDER)
    for path in listing.files:
        rel = relative(root, path)
        if not has_image_extension(path):
            report.warn(rel, f"Not a {EXTENSIONS_TEXT} file; it was ignored. Convert it or "
                        "remove it.", code=codes.IGNORED_FILE)
            continue
        info, issue = probe_image(path, rel, limits)
        if issue is not None:
            report.add(issue)
            continue
        assert info is not None
        index.samples.append(Sample(path=rel, width=info.width, height=info.height,
                                    label=label_index))
