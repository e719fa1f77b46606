"""Trained-model artifacts in object storage: one zip per model, written by the training worker
and read by whoever serves or evaluates the model (through modelregistry.api)."""

import os
import tempfile
import zipfile
from pathlib import Path

from core.stored_files import copy, download, upload

__all__ = ["ArtifactUnavailable", "copy", "download", "fetch", "store", "upload"]


class ArtifactUnavailable(Exception):
    """The stored artifact is missing or not a safe zip; the message says what to do."""


def store(folder: Path, key: str) -> None:
    """Zip an exported artifact folder (flat) into storage at `key`."""
    handle, name = tempfile.mkstemp(suffix=".zip")
    os.close(handle)
    archive = Path(name)
    try:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(folder.iterdir()):
                zf.write(file, file.name)
        upload(archive, key)
    finally:
        archive.unlink(missing_ok=True)


def fetch(key: str, into: Path) -> Path:
    """The artifact folder of `key`, downloaded and safely extracted under `into`."""
    archive, folder = into / "artifact.zip", into / "artifact"
    if not key or not download(key, archive):
        raise ArtifactUnavailable("The model's artifact is missing from storage; train the "
                                  "model again.")
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            if any(n.startswith(("/", "\\")) or ".." in Path(n).parts for n in names):
                raise ArtifactUnavailable("The model's artifact is not a safe archive; train "
                                          "the model again.")
            zf.extractall(folder)
    except zipfile.BadZipFile:
        raise ArtifactUnavailable("The model's artifact is not a zip; train the model "
                                  "again.") from None
    finally:
        archive.unlink(missing_ok=True)
    return folder
