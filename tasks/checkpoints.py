"""Training checkpoints in object storage: the last one of a task, so that another worker can
resume an interrupted attempt."""

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


def download(key: str, path: Path) -> bool:
    """Copy `key` to a local file; False when storage has no such key."""
    if not default_storage.exists(key):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with default_storage.open(key, "rb") as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    return True
