"""`manage.py weights`: fetch from a (local) URL by checksum, import official or custom files,
list; a download that cannot happen says what to do instead."""

import hashlib
import http.server
import io
import threading
from functools import partial

import pytest
import torch
from django.core.management import CommandError, call_command

from training_runtime import catalogue
from training_runtime.models import get
from training_runtime.weights import WeightStore


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "media")}}}
    return tmp_path / "media"


@pytest.fixture
def official(monkeypatch, tmp_path):
    """resnet18's catalogue entry pointed at a small file with a known checksum."""
    buffer = io.BytesIO()
    torch.save(get("classification", "small_cnn").builder(3).state_dict(), buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    entry = catalogue.OfficialWeights("X.V1", f"resnet18-{digest[:8]}.pth", digest[:8],
                                      "imagenet1k")
    monkeypatch.setitem(catalogue.OFFICIAL_WEIGHTS, "resnet18", entry)
    served = tmp_path / "served"
    served.mkdir()
    (served / entry.file_name).write_bytes(data)
    return served, entry, digest


@pytest.fixture
def http_server(official):
    served = official[0]
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def run(*args):
    out = io.StringIO()
    call_command("weights", *args, stdout=out)
    return out.getvalue()


def test_fetch_downloads_from_the_configured_url_and_keeps_the_file(
        media, official, http_server, settings):
    settings.WEIGHTS_BASE_URL = http_server
    _, entry, digest = official

    assert f"installed {entry.file_name} (sha256 {digest})" in run(
        "fetch", "--algorithm", "resnet18")

    assert (media / "weights" / "official" / entry.file_name).is_file()
    assert WeightStore(media / "weights").path_for("resnet18").name == entry.file_name
    assert "already installed" in run("fetch", "--algorithm", "resnet18")
    assert digest in run("list")


def test_fetch_refuses_a_file_with_another_checksum(media, official, http_server, settings):
    settings.WEIGHTS_BASE_URL = http_server
    served, entry, digest = official
    (served / entry.file_name).write_bytes(b"not the published file")

    with pytest.raises(CommandError, match=f"expected sha256 starting {digest[:8]}"):
        run("fetch", "--algorithm", "resnet18")
    assert WeightStore(media / "weights").list() == []


def test_fetch_without_network_says_what_to_do(media, official, settings):
    settings.WEIGHTS_BASE_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens

    with pytest.raises(CommandError, match="weights import FILE --algorithm NAME"):
        run("fetch", "--algorithm", "resnet18")


def test_import_official_and_custom_then_list(media, official, tmp_path):
    served, entry, _ = official
    run("import", str(served / entry.file_name), "--algorithm", "resnet18")
    mine = tmp_path / "mine.pth"
    torch.save(get("classification", "small_cnn").builder(5).state_dict(), mine)
    run("import", str(mine), "--algorithm", "small_cnn", "--custom", "digits")

    listing = run("list")
    assert "resnet18\tofficial" in listing and "small_cnn\tcustom\tdigits" in listing
    with pytest.raises(CommandError, match="do not fit resnet18"):
        run("import", str(mine), "--algorithm", "resnet18", "--custom", "wrong")
    with pytest.raises(CommandError, match="Unknown model"):
        run("import", str(mine), "--algorithm", "nope", "--custom", "x")
