"""Validation results: errors refuse a dataset, warnings let it proceed (SPEC T1, T10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One place lists the codes. Errors refuse the dataset; warnings are advice.
CORRUPT_IMAGE = "corrupt_image"
NOT_AN_IMAGE = "not_an_image"
IMAGE_TOO_LARGE = "image_too_large"
FILE_TOO_LARGE = "file_too_large"
UNREADABLE_FILE = "unreadable_file"
MISSING_FILE = "missing_file"
MISSING_IMAGE_FILE = "missing_image_file"
UNSAFE_PATH = "unsafe_path"
SYMLINK_IGNORED = "symlink_ignored"
MALFORMED_JSON = "malformed_json"
MALFORMED_XML = "malformed_xml"
FORBIDDEN_XML = "forbidden_xml"
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
DUPLICATE_IMAGE_ID = "duplicate_image_id"
DUPLICATE_ANNOTATION_ID = "duplicate_annotation_id"
DUPLICATE_LABEL = "duplicate_label"
DUPLICATE_IMAGE = "duplicate_image"
UNKNOWN_IMAGE_ID = "unknown_image_id"
UNKNOWN_LABEL = "unknown_label"
MISSING_LABEL = "missing_label"
BOX_OUTSIDE_IMAGE = "box_outside_image"
EMPTY_BOX = "empty_box"
INVALID_POLYGON = "invalid_polygon"
INVALID_RLE = "invalid_rle"
MISSING_SEGMENTATION = "missing_segmentation"
SIZE_MISMATCH = "size_mismatch"
EMPTY_DATASET = "empty_dataset"
LABEL_WITHOUT_IMAGES = "label_without_images"
TOO_FEW_LABELS = "too_few_labels"
UNSUPPORTED_FORMAT = "unsupported_format"
# Warning codes.
IGNORED_FILE = "ignored_file"
NESTED_FOLDER = "nested_folder"
UNANNOTATED_IMAGE = "unannotated_image"
UNLISTED_IMAGE = "unlisted_image"
FEW_IMAGES = "few_images"
FEW_IMAGES_FOR_LABEL = "few_images_for_label"
LABEL_IMBALANCE = "label_imbalance"
TOO_MANY_ISSUES = "too_many_issues"

MAX_ISSUES = 1000  # per list; a hostile dataset must not produce an unbounded report


@dataclass(frozen=True)
class Issue:
    """One problem: which file (relative POSIX path), where in it, what is wrong and what to do."""

    file: str
    message: str
    line: int | None = None
    annotation_id: Any | None = None
    code: str = INVALID_FIELD

    def as_dict(self) -> dict[str, Any]:
        """The API's `{file, message}` shape plus `code`, `line` and `annotation_id` when known."""
        out: dict[str, Any] = {"file": self.file, "message": self.message, "code": self.code}
        if self.line is not None:
            out["line"] = self.line
        if self.annotation_id is not None:
            out["annotation_id"] = self.annotation_id
        return out


@dataclass
class ValidationReport:
    """Errors (the dataset is refused) and warnings (it proceeds), each capped at `max_issues`."""

    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    max_issues: int = MAX_ISSUES
    suppressed_errors: int = 0
    suppressed_warnings: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing refuses the dataset."""
        return not self.errors and not self.suppressed_errors

    def error(self, file: str, message: str, *, code: str, line: int | None = None,
              annotation_id: Any | None = None) -> None:
        """Record a problem that refuses the dataset."""
        if len(self.errors) < self.max_issues:
            self.errors.append(Issue(file, message, line, annotation_id, code))
        else:
            self.suppressed_errors += 1

    def warn(self, file: str, message: str, *, code: str, line: int | None = None,
             annotation_id: Any | None = None) -> None:
        """Record advice; the dataset still proceeds."""
        if len(self.warnings) < self.max_issues:
            self.warnings.append(Issue(file, message, line, annotation_id, code))
        else:
            self.suppressed_warnings += 1

    def add(self, issue: Issue, *, as_error: bool = True) -> None:
        """Record an already-built issue as an error (default) or a warning."""
        target = self.error if as_error else self.warn
        target(issue.file, issue.message, code=issue.code, line=issue.line,
               annotation_id=issue.annotation_id)

    def codes(self) -> set[str]:
        """Every code present, errors and warnings together (handy for callers and tests)."""
        return {i.code for i in self.errors} | {i.code for i in self.warnings}

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """`{"errors": [...], "warnings": [...]}` as the Dataset resource carries them."""
        errors = [i.as_dict() for i in self.errors]
        warnings = [i.as_dict() for i in self.warnings]
        if self.suppressed_errors:
            errors.append(_overflow(self.suppressed_errors, "errors"))
        if self.suppressed_warnings:
            warnings.append(_overflow(self.suppressed_warnings, "warnings"))
        return {"errors": errors, "warnings": warnings}


def _overflow(count: int, what: str) -> dict[str, Any]:
    return {"file": "", "code": TOO_MANY_ISSUES,
            "message": f"{count} more {what} not listed; fix the ones above and upload again "
                       "to see the rest."}
