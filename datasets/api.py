"""What other apps may call: pick a dataset a tenant may use (a frozen DatasetRef), and get its
files on local disk.

    dataset = datasets.api.get_usable(tenant_id, data["train_dataset"], field="train_dataset")
    with datasets.api.materialize(dataset) as root:
        index, report = read_dataset(root, dataset.kind, dataset.format)
"""

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from core.errors import DatasetNotReady, ValidationFailed
from datasets import archive
from datasets.aggregates import INVALID, READY
from datasets.contracts import DatasetRef
from datasets.models import Dataset

__all__ = ["DatasetRef", "cache_dir", "get_unscoped", "get_usable", "materialize"]


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _ref(row: Dataset) -> DatasetRef:
    return DatasetRef(
        id=row.id, tenant_id=row.tenant_id, project_id=row.project, name=row.name,
        kind=row.kind, format=row.format, version=row.version, state=row.state,
        storage_key=row.storage_key, label_names=tuple(label["name"] for label in row.labels),
        image_count=row.image_count,
        builtin=row.builtin, archived=row.archived_at is not None)


def get_usable(tenant_id: uuid.UUID | str, dataset_id: object, *, field: str) -> DatasetRef:
    """The tenant's own dataset or a built-in sample, validated and not archived.

    Anything else is a 400 naming `field`: missing or another tenant's ("not found", the same
    words for both), archived, still validating, or invalid.
    """
    try:
        pk = uuid.UUID(str(dataset_id))
    except ValueError:
        raise _refuse(field, "Dataset not found.") from None
    dataset = Dataset.objects.visible_to(tenant_id).filter(pk=pk).first()
    if dataset is None:
        raise _refuse(field, "Dataset not found.")
    if dataset.archived_at is not None:
        raise _refuse(field, "Dataset was deleted (archived); pick another one.")
    if dataset.state == INVALID:
        raise _refuse(field, f"Dataset failed validation with {len(dataset.errors)} error(s); "
                      "fix them and upload a new version.")
    if dataset.state != READY:
        raise _refuse(field, f"Dataset is still being validated (state {dataset.state}); try "
                      "again when it is ready.")
    return _ref(dataset)


def get_unscoped(dataset_id: object) -> DatasetRef | None:
    """Any tenant's dataset in whatever state, for workers that hold its id from their own
    work (a task's, an evaluation's); None when there is none."""
    try:
        pk = uuid.UUID(str(dataset_id))
    except ValueError:
        return None
    row = Dataset.objects.unscoped().filter(pk=pk).first()
    return None if row is None else _ref(row)


def cache_dir() -> Path:
    """Where materialized datasets live on this machine."""
    return Path(settings.DATA_DIR) / "cache" / "datasets"


def _cache_name(dataset: DatasetRef) -> str:
    key = f"{dataset.storage_key}\0v{dataset.version}".encode()
    return hashlib.sha256(key).hexdigest()[:40]


def _extract_into(dataset: DatasetRef, final: Path) -> None:
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        local = tmp / "upload.zip"
        with default_storage.open(dataset.storage_key, "rb") as stored:
            archive.copy_stream(stored, local)
        extracted = tmp / "data"
        extracted.mkdir()
        archive.extract(local, extracted, archive.ZipLimits.from_settings())
        local.unlink()
        try:
            os.rename(tmp, final)  # atomic: a complete folder appears, or nothing
        except OSError:
            if not (final / "data").is_dir():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def materialize(dataset: DatasetRef) -> Iterator[Path]:
    """The validated dataset's root folder on local disk, extracted safely once and reused.

    The cache is keyed by storage key and version (a stored zip never changes) and filled
    atomically, so concurrent workers on one machine share it safely.
    """
    if dataset.state != READY:
        raise DatasetNotReady(f"Dataset {dataset.id} is {dataset.state}, not ready; only "
                              "validated datasets can be used.")
    final = cache_dir() / _cache_name(dataset)
    if not (final / "data").is_dir():
        _extract_into(dataset, final)
    os.utime(final)  # last use, for whoever prunes the cache
    yield archive.dataset_root(final / "data")
