"""`manage.py weights fetch|import|list`: the pretrained weights every worker trains from.

Weights live in object storage under ``weights/`` (local disk by default), installed once by an
operator and shared by all workers; no task downloads anything. ``fetch`` downloads torchvision's
published files (from ``WEIGHTS_BASE_URL`` when set, for a mirror) and keeps them only when their
sha256 matches the one torchvision publishes; ``import`` adds a file copied by hand (official, by
checksum) or an operator's own weights (``--custom NAME``, checked to fit the architecture).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training_runtime import catalogue
from training_runtime.catalogue import UnknownModelError
from training_runtime.models.weights import PretrainedWeightsError
from training_runtime.weights import WeightsNotFound, WeightStore

PREFIX = "weights"
DOWNLOAD_TIMEOUT_S = 60


def base_url() -> str:
    """Where official files are downloaded from: the WEIGHTS_BASE_URL setting/env or torchvision."""
    url = getattr(settings, "WEIGHTS_BASE_URL", "") or os.environ.get("WEIGHTS_BASE_URL", "")
    return (url.rstrip("/") + "/") if url else catalogue.WEIGHTS_BASE_URL


@contextmanager
def opened_store() -> Iterator[WeightStore]:
    """The store of object storage's ``weights/``: in place on local disk, else a staged copy
    whose new files and index are uploaded when the block ends without error."""
    try:
        yield WeightStore(Path(default_storage.path(PREFIX)))
        return
    except NotImplementedError:  # remote storage (S3): stage locally, then upload
        pass
    with tempfile.TemporaryDirectory(prefix="weights-") as tmp:
        store = WeightStore(tmp)
        index_key = f"{PREFIX}/{WeightStore.INDEX}"
        if default_storage.exists(index_key):
            with default_storage.open(index_key, "rb") as src, \
                    open(Path(tmp) / WeightStore.INDEX, "wb") as dst:
                shutil.copyfileobj(src, dst)
        before = {e.path for e in store.list()}
        yield store
        for entry in store.list():
            if entry.path not in before:
                _upload(Path(tmp) / entry.path, f"{PREFIX}/{entry.path}")
        _upload(Path(tmp) / WeightStore.INDEX, index_key)


def _upload(path: Path, key: str) -> None:
    if default_storage.exists(key):
        default_storage.delete(key)
    with open(path, "rb") as fh:
        default_storage.save(key, File(fh))


class Command(BaseCommand):
    help = "Install and list the pretrained weights that training starts from."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        fetch = sub.add_parser("fetch", help="download torchvision's weights, checksum-verified")
        fetch.add_argument("--algorithm", help="one algorithm (default: every one with weights)")
        imp = sub.add_parser("import", help="add a local weights file")
        imp.add_argument("file")
        imp.add_argument("--algorithm", required=True)
        imp.add_argument("--custom", help="store as custom weights under this name")
        sub.add_parser("list", help="show the installed weights")

    def handle(self, *args: object, action: str, **options: object) -> None:
        try:
            if action == "fetch":
                self._fetch(options.get("algorithm"))
            elif action == "import":
                self._import(Path(str(options["file"])), str(options["algorithm"]),
                             options.get("custom"))
            else:
                self._list()
        except (PretrainedWeightsError, WeightsNotFound, UnknownModelError, ValueError,
                OSError) as exc:
            raise CommandError(str(exc).strip("'\"")) from exc

    def _fetch(self, algorithm: object) -> None:
        names = [str(algorithm)] if algorithm else list(catalogue.OFFICIAL_WEIGHTS)
        with opened_store() as store:
            for name in names:
                official = catalogue.OFFICIAL_WEIGHTS.get(name)
                if official is None:
                    raise WeightsNotFound(
                        f"{name!r} has no official pretrained weights; those with some: "
                        f"{', '.join(catalogue.OFFICIAL_WEIGHTS)}.")
                try:
                    store.path_for(name)
                    self.stdout.write(f"{name}: already installed ({official.file_name})")
                    continue
                except WeightsNotFound:
                    pass
                url = base_url() + official.file_name
                with tempfile.TemporaryDirectory(prefix="weights-dl-") as tmp:
                    local = Path(tmp) / official.file_name
                    _download(url, local)
                    entry = store.add_official(name, local)
                self.stdout.write(f"{name}: installed {entry.name} (sha256 {entry.sha256})")

    def _import(self, path: Path, algorithm: str, custom: object) -> None:
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        with opened_store() as store:
            if custom:
                entry = store.add_custom(algorithm, str(custom), path)
            else:
                entry = store.add_official(algorithm, path)
        self.stdout.write(f"{algorithm}: installed {entry.kind} {entry.name} "
                          f"(sha256 {entry.sha256})")

    def _list(self) -> None:
        with opened_store() as store:
            entries = store.list()
        if not entries:
            self.stdout.write("No weights installed; run `manage.py weights fetch`.")
        for e in entries:
            self.stdout.write(f"{e.algorithm}\t{e.kind}\t{e.name}\t{e.size} bytes\t{e.sha256}")


def _download(url: str, target: Path) -> None:
    """Copy `url` to `target`, or CommandError saying what failed and what to do instead."""
    if not url.startswith(("https://", "http://")):
        raise CommandError(f"WEIGHTS_BASE_URL must be an http(s) URL, got {url!r}.")
    try:
        # The scheme is checked above: http(s) only, never file: or custom schemes.
        response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)  # noqa: S310
        with response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(
            f"Could not download {url}: {reason}. Without internet access, download the file "
            f"elsewhere and run `manage.py weights import FILE --algorithm NAME`, or set "
            f"WEIGHTS_BASE_URL to a mirror.") from exc
