"""Whole files in object storage (Django's default storage: local disk or S3): put a local file
at a key, copy one key to another, fetch a key to a local file. Shared by the training worker's
checkpoints and the model registry's artifacts."""

import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage


def upload(path: Path, key: str) -> None:
    """Store a local file at `key`, replacing what was there."""
    if default_storage.exists(key):
        default_storage.delete(key)
    with open(path, "rb") as fh:
        default_storage.save(key, File(fh))


def copy(source: str, target: str) -> None:
    """Copy a stored object to another key (streamed through a spooled temporary file)."""
    if default_storage.exists(target):
        default_storage.delete(target)
    with default_storage.open(source, "rb") as fh:
        default_storage.save(target, File(fh))


def download(key: str, path: Path) -> bool:
    """Copy `key` to a local file; False when storage has no such key."""
    if not default_storage.exists(key):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with default_storage.open(key, "rb") as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    return True
