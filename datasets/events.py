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
