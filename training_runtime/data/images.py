"""Safe image probing with Pillow: format allow-list, pixel and byte limits, full decode check."""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import (  # registers exactly the decoders ALLOWED_FORMATS names
    BmpImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from training_runtime.data import report as codes
from training_runtime.data.report import Issue

ALLOWED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# Pillow only tries these decoders, so a hostile file cannot reach exotic parsers (EPS, ...).
# (The JPEG decoder also opens MPO, the JPEG variant many cameras write.)
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
EXTENSIONS_TEXT = "jpg, jpeg, png, bmp or webp"


@dataclass(frozen=True)
class ImageLimits:
    """How big an image may be: decoded pixels (a decompression-bomb guard) and bytes on disk."""

    max_pixels: int = 89_478_485  # Pillow's default Image.MAX_IMAGE_PIXELS
    max_bytes: int = 64 * 1024 * 1024
    decode: bool = True  # decode every pixel (catches truncated files); False: header + verify


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class ImageInfo:
    """What probing learnt: size in pixels as displayed (EXIF orientation applied), mode,
    format."""

    width: int
    height: int
    mode: str
    format: str


def has_image_extension(path: Path) -> bool:
    """True for the extensions the platform accepts (case-insensitive)."""
    return path.suffix.lower() in ALLOWED_EXTENSIONS


def _looks_like_image(head: bytes) -> bool:
    """True when the first bytes carry a jpg, png, bmp or webp signature."""
    return (head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"))


# EXIF orientations 5-8 turn the image a quarter: displayed width and height swap.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 = as stored); hostile EXIF counts as 1."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make a readable image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(im: Image.Image) -> Image.Image:
    """`im` as viewers show it: EXIF orientation applied (as Detectron2 and OpenCV do), so
    boxes drawn in a browser-based labelling tool land on the pixels they were drawn on."""
    if _orientation(im) == 1:
        return im
    return ImageOps.exif_transpose(im)


def _open(fh: BinaryIO) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(fh, formats=ALLOWED_FORMATS)


def probe_image(path: Path, rel: str,
                limits: ImageLimits = DEFAULT_LIMITS) -> tuple[ImageInfo | None, Issue | None]:
    """Check one image file; return its info, or the issue that makes it unusable."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return None, Issue(rel, f"Cannot read the image ({exc.strerror}); upload it again.",
                           code=codes.UNREADABLE_FILE)
    if not stat.S_ISREG(info.st_mode):
        return None, Issue(rel, "Not a regular file; replace it with the image itself.",
                           code=codes.NOT_AN_IMAGE)
    if info.st_size == 0:
        return None, Issue(rel, "The image file is empty; replace it or remove it.",
                           code=codes.CORRUPT_IMAGE)
    if info.st_size > limits.max_bytes:
        return None, Issue(rel, f"The image file is {info.st_size} bytes, over the "
                           f"{limits.max_bytes}-byte limit; shrink or recompress it.",
                           code=codes.FILE_TOO_LARGE)
    try:
        with open(path, "rb") as fh:
            return _probe_open_file(fh, rel, limits)
    except OSError as exc:
        return None, Issue(rel, f"Cannot read the image ({exc.strerror}); upload it again.",
                           code=codes.UNREADABLE_FILE)


def _too_large(rel: str, width: int, height: int, limits: ImageLimits) -> Issue:
    return Issue(rel, f"The image claims {width}x{height} pixels, over the limit of "
                 f"{limits.max_pixels} pixels; resize it (or it is a decompression bomb).",
                 code=codes.IMAGE_TOO_LARGE)


def _probe_open_file(fh: BinaryIO, rel: str,
                     limits: ImageLimits) -> tuple[ImageInfo | None, Issue | None]:
    corrupt = ("The image is corrupt or truncated ({}); re-export it as {} or remove it.")
    try:
        im = _open(fh)
    except Image.DecompressionBombError:
        return None, Issue(rel, f"The image claims more pixels than the limit of "
                           f"{limits.max_pixels}; resize it (or it is a decompression bomb).",
                           code=codes.IMAGE_TOO_LARGE)
    except Image.UnidentifiedImageError:
        fh.seek(0)
        if _looks_like_image(fh.read(12)):
            return None, Issue(rel, corrupt.format("unreadable header", EXTENSIONS_TEXT),
                               code=codes.CORRUPT_IMAGE)
        return None, Issue(rel, f"Not an image Pillow can read as {EXTENSIONS_TEXT}; convert it "
                           "to one of those formats or remove it.", code=codes.NOT_AN_IMAGE)
    except Exception as exc:  # hostile bytes can raise anything from inside a decoder
        return None, Issue(rel, corrupt.format(type(exc).__name__, EXTENSIONS_TEXT),
                           code=codes.CORRUPT_IMAGE)
    with im:
        width, height = im.size
        if width <= 0 or height <= 0:
            return None, Issue(rel, "The image has no pixels; replace it or remove it.",
                               code=codes.CORRUPT_IMAGE)
        if width * height > limits.max_pixels:
            return None, _too_large(rel, width, height, limits)
        mode, fmt = im.mode, im.format or ""
        try:
            im.verify()
        except Exception as exc:
            return None, Issue(rel, corrupt.format(type(exc).__name__, EXTENSIONS_TEXT),
                               code=codes.CORRUPT_IMAGE)
    try:
        fh.seek(0)  # verify() leaves the image unusable: open it again
        with _open(fh) as again:
            if _orientation(again) in _QUARTER_TURNS:
                width, height = height, width
            if limits.decode:
                again.load()
    except Exception as exc:
        return None, Issue(rel, corrupt.format(type(exc).__name__, EXTENSIONS_TEXT),
                           code=codes.CORRUPT_IMAGE)
    return ImageInfo(width, height, mode, fmt), None


def load_rgb(path: Path, limits: ImageLimits = DEFAULT_LIMITS) -> Image.Image:
    """Open an already-validated image upright as RGB; raises ValueError if it breaks the
    limits."""
    with open(path, "rb") as fh, _open(fh) as im:
        if im.size[0] * im.size[1] > limits.max_pixels:
            raise ValueError(f"{path.name}: {im.size} exceeds {limits.max_pixels} pixels")
        return upright(im).convert("RGB")
