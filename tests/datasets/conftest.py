"""Datasets live on a private disk per test, so "nothing was stored" can be checked exactly."""

from pathlib import Path

import pytest

from eventlog.models import Event


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path) -> Path:
    """Local-disk storage and DATA_DIR (work and cache folders) under this test's tmp_path."""
    media = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(media)}}}
    settings.DATA_DIR = tmp_path / "data"
    return media


def stored_files(media: Path) -> list[str]:
    """Every file under the storage root, relative to it."""
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())


def dataset_events(tenant_id=None) -> list[Event]:
    events = Event.objects.filter(stream_type="dataset")
    if tenant_id is not None:
        events = events.filter(tenant_id=tenant_id)
    return list(events.order_by("position"))


@pytest.fixture
def as_a(api, tenant_a):
    return api.as_(tenant_a)


@pytest.fixture
def project(project_of_a) -> str:
    return project_of_a["id"]
