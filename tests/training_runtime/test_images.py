"""Hostile and broken image files are reported, never read past the limits, never a traceback."""

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from training_runtime.data import DEFAULT_LIMITS, ImageLimits, probe_image, read_dataset

from .conftest import find, write_image


def png_claiming(width, height) -> bytes:
    """A PNG whose header claims width x height pixels, with hardly any data behind it."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def png_bytes(size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def probe(tmp_path, name, data, limits=DEFAULT_LIMITS):
    path = tmp_path / name
    path.write_bytes(data)
    return probe_image(path, name, limits)


def test_a_valid_image_reports_its_size_mode_and_format(tmp_path):
    info, issue = probe_image(write_image(tmp_path / "a.png", size=(40, 24)), "a.png")

    assert issue is None
    assert (info.width, info.height, info.mode, info.format) == (40, 24, "RGB", "PNG")


@pytest.mark.parametrize(("name", "data", "code"), [
    ("random.jpg", os.urandom(2048), "not_an_image"),
    ("headed.jpg", b"\xff\xd8\xff\xe0" + os.urandom(512), "corrupt_image"),
    ("truncated.png", png_bytes()[:60], "corrupt_image"),
    ("text.png", b"name,label\ncat,1\n", "not_an_image"),
    ("empty.jpg", b"", "corrupt_image"),
    ("gif.png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "not_an_image"),
])
def test_broken_files_are_errors_with_their_file(tmp_path, name, data, code):
    info, issue = probe(tmp_path, name, data)

    assert info is None
    assert (issue.code, issue.file) == (code, name)
    assert "remove" in issue.message or "convert" in issue.message


def test_a_truncated_png_in_a_dataset_refuses_it_with_its_path(folders_root):
    (folders_root / "dog" / "cut.png").write_bytes(png_bytes()[:-20])

    _, report = read_dataset(folders_root, "classification", "folders")

    assert find(report.errors, "corrupt_image")[0].file == "dog/cut.png"


def test_a_decompression_bomb_header_is_refused_without_decoding(tmp_path):
    info, issue = probe(tmp_path, "bomb.png", png_claiming(100_000, 100_000))

    assert info is None
    assert issue.code == "image_too_large"


def test_the_pixel_limit_is_configurable(tmp_path):
    _, issue = probe_image(write_image(tmp_path / "a.png"), "a.png", ImageLimits(max_pixels=1000))

    assert issue.code == "image_too_large"
    assert "32x32" in issue.message


def test_the_byte_limit_is_checked_before_opening(tmp_path):
    _, issue = probe_image(write_image(tmp_path / "a.png"), "a.png", ImageLimits(max_bytes=10))

    assert issue.code == "file_too_large"


def test_a_symlink_out_of_the_root_is_never_read(tmp_path, folders_root):
    secret = write_image(tmp_path / "outside" / "secret.jpg")
    os.symlink(secret, folders_root / "cat" / "link.jpg")
    os.symlink(tmp_path / "outside", folders_root / "linked_label")

    index, report = read_dataset(folders_root, "classification", "folders")

    assert report.ok
    assert "cat/link.jpg" not in [s.path for s in index.samples]
    assert "linked_label" not in index.labels
    ignored = {i.file for i in find(report.warnings, "symlink_ignored")}
    assert ignored == {"cat/link.jpg", "linked_label"}


def test_a_fifo_is_skipped_not_opened(folders_root):
    os.mkfifo(folders_root / "cat" / "pipe.jpg")

    _, report = read_dataset(folders_root, "classification", "folders")

    assert find(report.warnings, "ignored_file")[0].file == "cat/pipe.jpg"


def exif_rotated_jpeg(path, orientation=6):
    """A 40x20 stored JPEG, left half red, whose EXIF says: turn it a quarter to display."""
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    return path


def test_exif_orientation_gives_the_displayed_size_and_pixels(tmp_path):
    """Orientation 6 (camera held upright): viewers, and labelling tools in a browser, show it
    turned 90 degrees clockwise, so probing, training and prediction all see it that way."""
    from training_runtime.data.images import load_rgb
    from training_runtime.predict.inputs import to_tensor

    path = exif_rotated_jpeg(tmp_path / "portrait.jpg")
    info, issue = probe_image(path, "portrait.jpg")
    assert issue is None and (info.width, info.height) == (20, 40)
    loaded = load_rgb(path)
    assert loaded.size == (20, 40)
    top, bottom = loaded.getpixel((10, 5)), loaded.getpixel((10, 35))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # red (left) turned to the top
    for source in (path, path.read_bytes(), Image.open(path)):
        tensor = to_tensor(source)
        assert tuple(tensor.shape) == (3, 40, 20)
        assert tensor[0, 5, 10] > 200 and tensor[2, 35, 10] > 200


def test_a_broken_exif_orientation_is_ignored_not_fatal(tmp_path):
    path = exif_rotated_jpeg(tmp_path / "odd.jpg", orientation=42)
    info, issue = probe_image(path, "odd.jpg")
    assert issue is None and (info.width, info.height) == (40, 20)
