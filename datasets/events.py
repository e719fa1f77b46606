"""Events of the dataset stream (stream type "dataset", stream id = the dataset id)."""

from dataclasses import dataclass

from eventlog.schema import event


@event("DatasetUploaded")
@dataclass(frozen=True)
class DatasetUploaded:
    project: str | None  # None for the built-in samples, which belong to no project
    name: str
    kind: str
    format: str
    version: int
    parent: str | None  # the dataset this is a new version of
    storage_key: str
    size_bytes: int
    file_count: int
    uncompressed_bytes: int
    builtin: bool
    uploaded_by: str | None


@event("DatasetValidationStarted")
@dataclass(frozen=True)
class DatasetValidationStarted:
    pass


@event("DatasetValidated")
@dataclass(frozen=True)
class DatasetValidated:
    image_count: int
    labels: list
    errors: list
    warnings: list


@event("DatasetRejected")
@dataclass(frozen=True)
class DatasetRejected:
    image_count: int
    labels: list
    errors: list
    warnings: list


@event("DatasetArchived")
@dataclass(frozen=True)
class DatasetArchived:
    pass


@event("DatasetAnnotationCorrected")
@dataclass(frozen=True)
class DatasetAnnotationCorrected:
    """One image's annotation corrected; recorded on the new version it made, after its
    DatasetUploaded (the parent version is named there and stays as it was)."""

    file_name: str  # the image as the parent version names it
    new_file_name: str  # where it is in this version (folders: the new label's folder)
    before: dict  # {"label"} or {"annotations": [{"label", "bbox"}]}
    after: dict  # the same shape; objects may carry "segmentation"
    note: str
    source: dict  # where the user saw the mistake: {"evaluation": id}, {"task": id} or {}
