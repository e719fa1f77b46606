"""Hostile zips are refused before anything is stored: 400 (or 413) naming `file`, no stored
file, no event, no row. Extraction checks every member again and counts the bytes it writes."""

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from datasets import archive
from datasets.models import Dataset
from tests.datasets.conftest import dataset_events, stored_files
from tests.datasets.zips import folders_files, make_zip, png, upload

MIB = 1024 * 1024


def symlink_zip() -> bytes:
    link = zipfile.ZipInfo("cat/evil.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return make_zip({**folders_files(), link: "/etc/passwd"})


def renamed(data: bytes, old: bytes, new: bytes) -> bytes:
    """The zip with a member name replaced byte for byte (same length) in every header."""
    assert len(old) == len(new) and data.count(old) == 2
    return data.replace(old, new)


def bomb() -> bytes:
    return make_zip({**folders_files(), "cat/padding.bin": b"\0" * (4 * MIB)})


HOSTILE = {
    "not-a-zip": (b"this is not a zip file at all", "not a zip"),
    "truncated-zip": (make_zip(folders_files())[:300], "not a zip"),
    "empty-zip": (make_zip({}), "no files"),
    "path-traversal": (make_zip({**folders_files(), "../x.png": png()}), ".."),
    "deep-traversal": (make_zip({**folders_files(), "cat/../../x.png": png()}), ".."),
    "backslash-traversal": (make_zip({**folders_files(), "cat\\..\\..\\x.png": png()}), ".."),
    "absolute-path": (make_zip({**folders_files(), "/tmp/x.png": png()}), "absolute"),
    "drive-letter": (make_zip({**folders_files(), "C:/x.png": png()}), "absolute"),
    "nul-byte": (renamed(make_zip({**folders_files(), "cat/aXb.png": png()}), b"cat/aXb.png",
                         b"cat/a\0b.png"), "NUL"),
    "symlink": (symlink_zip(), "symbolic link"),
    "duplicate-path": (renamed(make_zip({**folders_files(), "cat/zz.png": png()}),
                               b"cat/zz.png", b"cat/c0.png"), "twice"),
    "file-and-folder": (make_zip({**folders_files(), "cat": b"x"}), "both a file and a folder"),
    "bomb-by-ratio": (bomb(), "zip bomb"),
}


def assert_nothing_stored(media: Path) -> None:
    assert stored_files(media) == []
    assert dataset_events() == []
    assert not Dataset.objects.unscoped().exists()


@pytest.mark.parametrize("case", list(HOSTILE), ids=str)
def test_hostile_zips_are_refused_before_anything_is_stored(as_a, project, private_storage,
                                                            case):
    data, words = HOSTILE[case]

    response = upload(as_a, project, data)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == ["file"]
    assert words.lower() in error["fields"]["file"][0].lower()
    assert_nothing_stored(private_storage)


def test_a_zip_over_the_uncompressed_limit_is_a_bomb(as_a, project, private_storage, settings):
    settings.DATASET_MAX_UNCOMPRESSED_BYTES = 200  # the 5 images hold ~400

    response = upload(as_a, project, make_zip(folders_files()))

    assert response.status_code == 400
    assert "zip bomb" in response.json()["error"]["fields"]["file"][0]
    assert_nothing_stored(private_storage)


def test_a_zip_with_too_many_members_is_refused(as_a, project, private_storage, settings):
    settings.DATASET_MAX_FILES = 4

    response = upload(as_a, project, make_zip(folders_files()))

    assert response.status_code == 400
    assert "at most 4" in response.json()["error"]["fields"]["file"][0]
    assert_nothing_stored(private_storage)


def test_a_lower_ratio_limit_applies(as_a, project, private_storage, settings):
    settings.DATASET_MAX_RATIO = 2
    text = make_zip({**folders_files(), "cat/notes.txt": b"0123456789" * (MIB // 5)})

    response = upload(as_a, project, text)

    assert response.status_code == 400
    assert "zip bomb" in response.json()["error"]["fields"]["file"][0]
    assert_nothing_stored(private_storage)


def test_small_compressible_members_are_not_bombs(as_a, project):
    blank = make_zip({**folders_files(), "cat/blank.txt": b"\0" * 100_000})

    assert upload(as_a, project, blank).status_code == 201


def test_an_upload_over_max_upload_bytes_is_413(as_a, project, private_storage, settings):
    settings.MAX_UPLOAD_BYTES = 500

    response = upload(as_a, project, make_zip(folders_files()))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert_nothing_stored(private_storage)


def test_the_command_refuses_an_oversize_file_even_without_a_declared_length(
        as_a, tenant_a, project, private_storage, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from core.errors import PayloadTooLarge
    from core.tenancy import TenantAccess
    from datasets import commands

    settings.MAX_UPLOAD_BYTES = 500
    access = TenantAccess(tenant_id=tenant_a.tenant_id, user_id=tenant_a.user_id, role="owner")
    with pytest.raises(PayloadTooLarge) as refused:
        commands.upload_dataset(access, project=project, name="D", kind="classification",
                                fmt="folders",
                                upload=SimpleUploadedFile("d.zip", make_zip(folders_files())))
    assert list(refused.value.fields) == ["file"]
    assert_nothing_stored(private_storage)


# --- extraction: never trusts the directory it was given ---------------------------------------


def lying_header_zip(tmp_path: Path) -> Path:
    """A member of 2 MiB whose headers declare 1,000 bytes (a ratio that passes the check)."""
    data = bytearray(make_zip({"cat/a.png": png(), "cat/lie.bin": b"\0" * (2 * MIB)}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        local = zf.getinfo("cat/lie.bin").header_offset
    central = data.rfind(b"PK\x01\x02", 0, len(data))  # the last member's central entry
    struct.pack_into("<I", data, local + 22, 1000)  # local header: uncompressed size
    struct.pack_into("<I", data, central + 24, 1000)  # central directory: uncompressed size
    path = tmp_path / "lying.zip"
    path.write_bytes(bytes(data))
    return path


def test_extraction_stops_at_a_header_that_lies_about_its_size(tmp_path):
    path = lying_header_zip(tmp_path)
    limits = archive.ZipLimits(max_uncompressed_bytes=MIB, max_ratio=200)
    assert archive.check(path, limits).uncompressed_bytes < MIB  # the directory looks fine

    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(archive.UnsafeArchive) as refused:
        archive.extract(path, dest, limits)

    assert refused.value.file == "cat/lie.bin"
    written = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert written <= MIB


def test_extraction_rechecks_every_member(tmp_path):
    path = tmp_path / "evil.zip"
    path.write_bytes(make_zip({"cat/a.png": png(), "../escape.png": png()}))
    dest = tmp_path / "out"
    dest.mkdir()

    with pytest.raises(archive.UnsafeArchive):
        archive.extract(path, dest, archive.ZipLimits())

    assert not (tmp_path / "escape.png").exists()
    assert list(dest.rglob("*")) == []  # refused before the first byte is written


@pytest.mark.parametrize("name", ["a/../../b", "/abs", "\\abs", "C:\\x", "c:x", "a\0b", "a\nb",
                                  "..", "", "./../x", "a/" * 40 + "x"])
def test_unsafe_member_names(name):
    with pytest.raises(archive.UnsafeArchive):
        archive.member_parts(name)


@pytest.mark.parametrize(("name", "parts"), [
    ("cat/a.png", ("cat", "a.png")), ("cat\\a.png", ("cat", "a.png")),
    ("./cat//a.png", ("cat", "a.png")), ("a..b/c", ("a..b", "c")),
])
def test_safe_member_names(name, parts):
    assert archive.member_parts(name) == parts
