"""State changes of datasets: upload, new version, corrections, validation, archive."""

import logging
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from accounts.api import open_project
from core import context, lifecycle
from core.broker import CPU_QUEUE
from core.errors import (
    DatasetIsArchived,
    DatasetNotReady,
    DatasetUnreadable,
    NotFound,
    NotLatestVersion,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from core.tenancy import TenantAccess
from core.work import Work
from datasets import archive
from datasets.aggregates import READY, UPLOADED, DatasetAggregate
from datasets.correction_rewrite import rewrite
from datasets.corrections import Correction, Refused
from datasets.events import (
    DatasetAnnotationCorrected,
    DatasetArchived,
    DatasetRejected,
    DatasetUploaded,
    DatasetValidated,
    DatasetValidationStarted,
)
from datasets.models import Dataset
from eventlog.aggregates import retry_on_conflict

logger = logging.getLogger(__name__)
VALIDATE = Work("validate_dataset", CPU_QUEUE)  # declared in datasets.actors

BUILTIN_READ_ONLY = ("Built-in sample datasets are shared by every tenant and cannot be changed; "
                     "upload your own copy to change it.")


def work_dir() -> Path:
    """Where zips are fetched and extracted for validation (on the data volume, not /tmp)."""
    path = Path(settings.DATA_DIR) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_zip(upload: IO[bytes]) -> archive.Summary:
    """The upload's zip summary, or a 400 on `file` saying why the zip is refused."""
    upload.seek(0)
    try:
        return archive.check(upload, archive.ZipLimits.from_settings())
    except archive.UnsafeArchive as exc:
        where = f" ({exc.file})" if exc.file else ""
        raise ValidationFailed(f"The zip was refused{where}: {exc.message}",
                               fields={"file": [f"{exc.file}: {exc.message}" if exc.file
                                                else exc.message]}) from exc
    finally:
        upload.seek(0)


def _require_upload_size(upload: File) -> None:
    limit = settings.MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(f"The file has {upload.size} bytes; at most {limit} are accepted.",
                              fields={"file": [f"Larger than {limit} bytes."]})


def _require_project(tenant_id: uuid.UUID, project_id: object) -> None:
    if open_project(tenant_id, project_id) is None:
        raise ValidationFailed("The project does not exist in this tenant; pick one of yours.",
                               fields={"project": ["Project not found."]})


def _enqueue_validation(tenant_id: uuid.UUID, dataset_id: uuid.UUID) -> None:
    VALIDATE.send(str(tenant_id), str(dataset_id))


def _record(tenant_id: uuid.UUID, upload: File, summary: archive.Summary, *,
            actor: str, user_id: uuid.UUID | None, project: object, name: str, kind: str,
            fmt: str, version: int, parent: uuid.UUID | None, builtin: bool,
            enqueue: bool = True, then: Sequence[object] = ()) -> Dataset:
    """Store the checked zip, then append DatasetUploaded (and the events `then` names, in the
    same transaction); the stored file goes if that fails."""
    dataset_id = uuid.uuid4()
    upload.seek(0)
    key = default_storage.save(f"datasets/{tenant_id}/{dataset_id}/v{version}.zip", upload)
    try:
        with transaction.atomic():
            dataset = DatasetAggregate(tenant_id, dataset_id)
            with context.scope(actor=actor):
                dataset.append(DatasetUploaded(
                    project=str(project) if project else None, name=name, kind=kind,
                    format=fmt, version=version, parent=str(parent) if parent else None,
                    storage_key=key, size_bytes=upload.size or 0,
                    file_count=summary.file_count, uncompressed_bytes=summary.uncompressed_bytes,
                    builtin=builtin, uploaded_by=str(user_id) if user_id else None,
                ), *then)
    except IntegrityError as exc:
        default_storage.delete(key)
        raise VersionConflict("Another version of this dataset was uploaded at the same time; "
                              "upload yours again.") from exc
    except BaseException:
        default_storage.delete(key)
        raise
    if enqueue:
        transaction.on_commit(lambda: _enqueue_validation(tenant_id, dataset_id))
    return Dataset.objects.unscoped().get(pk=dataset_id)


def upload_dataset(access: TenantAccess, *, project: uuid.UUID, name: str, kind: str, fmt: str,
                   upload: File) -> Dataset:
    """Check a dataset zip, store it and start its validation on the CPU queue."""
    _require_project(access.tenant_id, project)
    _require_upload_size(upload)
    summary = check_zip(upload)
    return _record(access.tenant_id, upload, summary, actor=access.actor,
                   user_id=access.user_id, project=project, name=name, kind=kind, fmt=fmt,
                   version=1, parent=None, builtin=False)


def _versionable(access: TenantAccess, dataset_id: object) -> Dataset:
    """The tenant's own dataset, not archived: 404 otherwise, 403 for a built-in sample."""
    parent = (Dataset.objects.visible_to(access.tenant_id)
              .filter(pk=dataset_id, archived_at__isnull=True).first())
    if parent is None:
        raise NotFound("Dataset not found.")
    if parent.builtin:
        raise PermissionDenied(BUILTIN_READ_ONLY)
    return parent


def _next_version(tenant_id: uuid.UUID, parent: Dataset) -> int:
    latest = (Dataset.objects.for_tenant(tenant_id).filter(origin=parent.origin)
              .order_by("-version").values_list("version", flat=True).first())
    return (latest or 0) + 1


def add_version(access: TenantAccess, dataset_id: object, upload: File) -> Dataset:
    """A new version of a dataset (corrected annotations): same name, kind and format."""
    parent = _versionable(access, dataset_id)
    _require_upload_size(upload)
    summary = check_zip(upload)
    return _record(access.tenant_id, upload, summary, actor=access.actor,
                   user_id=access.user_id, project=parent.project, name=parent.name,
                   kind=parent.kind, fmt=parent.format,
                   version=_next_version(access.tenant_id, parent), parent=parent.id,
                   builtin=False)


def _require_correctable(access: TenantAccess, parent: Dataset) -> None:
    if parent.state != READY:
        raise DatasetNotReady(f"Dataset v{parent.version} is {parent.state}; only a validated "
                              "(ready) dataset can be corrected. Wait for its validation, or "
                              "upload a fixed version.")
    newest = (Dataset.objects.for_tenant(access.tenant_id)
              .filter(origin=parent.origin, archived_at__isnull=True)
              .order_by("-version").first())
    if newest is not None and newest.id != parent.id:
        raise NotLatestVersion(f"Version {newest.version} ({newest.id}) is newer than version "
                               f"{parent.version}; correct that one (or delete it if it is not "
                               "wanted), so that no change is lost.")


def correct_annotations(access: TenantAccess, dataset_id: object,
                        corrections: Sequence[Correction], *, note: str = "",
                        source: dict[str, str] | None = None,
                        allow_new_labels: bool = False) -> Dataset:
    """A new version of a ready dataset with some images' annotations corrected (E12).

    The parent's zip is rewritten into a new one in the dataset's format (the parent stays
    exactly as it was), stored as the next version with one DatasetAnnotationCorrected per
    image, and validated like an upload. Only the newest version of a line can be corrected,
    so that a second correction never drops the first.
    """
    parent = _versionable(access, dataset_id)
    _require_correctable(access, parent)
    work = Path(tempfile.mkdtemp(prefix="correct-", dir=work_dir()))
    try:
        local, rewritten = work / "parent.zip", work / "corrected.zip"
        try:
            with default_storage.open(parent.storage_key, "rb") as stored:
                archive.copy_stream(stored, local)
            changes = rewrite(local, rewritten, work, kind=parent.kind, fmt=parent.format,
                              label_images={row["name"]: row["image_count"]
                                            for row in parent.labels},
                              corrections=corrections, allow_new_labels=allow_new_labels,
                              limits=archive.ZipLimits.from_settings())
        except Refused as exc:
            raise ValidationFailed(exc.message, fields={exc.field: [exc.message]}) from exc
        except (FileNotFoundError, archive.UnsafeArchive) as exc:
            raise DatasetUnreadable() from exc
        facts = [DatasetAnnotationCorrected(
            file_name=c.file_name, new_file_name=c.new_file_name, before=c.before,
            after=c.after, note=note, source=source or {}) for c in changes]
        version = _next_version(access.tenant_id, parent)
        with open(rewritten, "rb") as fh:
            upload = File(fh, name=f"v{version}.zip")
            return _record(access.tenant_id, upload, check_zip(upload), actor=access.actor,
                           user_id=access.user_id, project=parent.project, name=parent.name,
                           kind=parent.kind, fmt=parent.format, version=version,
                           parent=parent.id, builtin=False, then=facts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def add_builtin(tenant_id: uuid.UUID, upload: File, *, name: str, kind: str,
                fmt: str) -> Dataset:
    """Record a built-in sample dataset (platform tenant) and validate it at once."""
    summary = check_zip(upload)
    with transaction.atomic():
        dataset = _record(tenant_id, upload, summary, actor="system", user_id=None,
                          project=None, name=name, kind=kind, fmt=fmt, version=1, parent=None,
                          builtin=True, enqueue=False)
    validate(tenant_id, dataset.id)
    return Dataset.objects.unscoped().get(pk=dataset.id)


def archive_dataset(access: TenantAccess, dataset_id: object) -> None:
    """Archive (delete) a dataset version: it answers 404 after, its history stays (checked
    again when its validation reports in between)."""
    row = Dataset.objects.visible_to(access.tenant_id).filter(pk=dataset_id).first()
    if row is not None and row.builtin:
        raise PermissionDenied(BUILTIN_READ_ONLY)

    def archive_once() -> None:
        dataset = DatasetAggregate.load(access.tenant_id, dataset_id)
        dataset.require(not dataset.archived, "The dataset is already archived.",
                        DatasetIsArchived)
        with context.scope(actor=access.actor):
            dataset.append(DatasetArchived())

    retry_on_conflict(archive_once)


# --- validation (run by datasets.actors.validate_dataset) --------------------------------------


def _rejected(exc: archive.UnsafeArchive) -> tuple[bool, dict[str, Any]]:
    return False, {"image_count": 0, "labels": [], "errors": [exc.as_issue()], "warnings": []}


def inspect_stored(storage_key: str, kind: str, fmt: str) -> tuple[bool, dict[str, Any]]:
    """Extract a stored zip safely and read it: (ok, {image_count, labels, errors, warnings})."""
    from training_runtime.data import dataset_fields, read_dataset

    work = Path(tempfile.mkdtemp(prefix="dataset-", dir=work_dir()))
    try:
        local = work / "upload.zip"
        try:
            with default_storage.open(storage_key, "rb") as stored:
                archive.copy_stream(stored, local)
        except FileNotFoundError:
            return _rejected(archive.UnsafeArchive(
                "The stored zip is missing; upload the dataset again.", code="missing_file"))
        extracted = work / "data"
        extracted.mkdir()
        try:
            archive.extract(local, extracted, archive.ZipLimits.from_settings())
        except archive.UnsafeArchive as exc:
            return _rejected(exc)
        index, report = read_dataset(archive.dataset_root(extracted), kind, fmt, partial=True)
        return report.ok, dataset_fields(index, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def validate(tenant_id: uuid.UUID | str, dataset_id: object) -> None:
    """Validate an uploaded dataset and record the result; a finished one is left alone, and
    so is one a live worker is validating (a duplicate or recovered delivery)."""
    dataset = DatasetAggregate.load(tenant_id, dataset_id)
    if dataset.archived or dataset.finished:
        return
    with lifecycle.hold(validation_key(dataset_id)) as lease:
        if lease is None:
            logger.info("dataset %s is being validated by a live worker", dataset_id)
            return
        _validate_held(tenant_id, dataset_id)


def validation_key(dataset_id: object) -> str:
    """The lease of a dataset's validation."""
    return f"dataset:{dataset_id}"


def _validate_held(tenant_id: uuid.UUID | str, dataset_id: object) -> None:
    dataset = DatasetAggregate.load(tenant_id, dataset_id)  # again: it may have ended meanwhile
    if dataset.archived or dataset.finished:
        return
    if dataset.state == UPLOADED:
        with transaction.atomic():
            dataset.append(DatasetValidationStarted())
    ok, fields = inspect_stored(dataset.storage_key, dataset.kind, dataset.format)
    with transaction.atomic():
        dataset = DatasetAggregate.load(tenant_id, dataset_id)
        if dataset.archived or dataset.finished:
            return
        result = DatasetValidated(**fields) if ok else DatasetRejected(**fields)
        dataset.append(result)
    logger.info("dataset %s validated: %s", dataset_id, "ready" if ok else "invalid")
