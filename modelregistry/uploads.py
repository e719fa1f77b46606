"""An uploaded model zip, checked from its central directory before a byte is extracted, and
extracted with a byte budget (the header sizes of a hostile zip may lie). Torch-free: the web
process refuses a bad zip at once; the worker extracts it."""

import posixpath
import zipfile
from pathlib import Path
from typing import IO

MAX_MEMBERS = 16  # an artifact is a flat folder of a few files
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_RATIO = 200.0  # uncompressed / compressed, per member of more than RATIO_FLOOR bytes
RATIO_FLOOR = 1024 * 1024
CHUNK = 1024 * 1024


class UnsafeZip(ValueError):
    """The zip is damaged, hostile or too large; the message says which."""


def check(path: Path | IO[bytes]) -> list[zipfile.ZipInfo]:
    """The zip's file members, or UnsafeZip naming the problem."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise UnsafeZip(f"The file is not a readable zip ({exc}).") from None
    files = [i for i in infos if not i.is_dir()]
    if len(infos) > MAX_MEMBERS:
        raise UnsafeZip(f"The zip holds {len(infos)} entries; a model artifact has at most "
                        f"{MAX_MEMBERS}.")
    total = 0
    for info in files:
        name = info.filename
        if (name.startswith(("/", "\\")) or "\\" in name or ":" in name
                or ".." in name.split("/") or posixpath.dirname(name.rstrip("/"))):
            raise UnsafeZip(f"The zip member {name!r} is not a plain file name at its top "
                            f"level (no folders, no '..', no absolute paths).")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UnsafeZip(f"The zip member {name!r} is a symbolic link.")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(
                info.compress_size, 1):
            raise UnsafeZip(f"The zip member {name!r} expands {info.file_size} bytes from "
                            f"{info.compress_size}: more than {MAX_RATIO:.0f} times (a zip "
                            f"bomb?).")
        total += info.file_size
    if total > MAX_UNPACKED_BYTES:
        raise UnsafeZip(f"The zip expands to {total} bytes; at most {MAX_UNPACKED_BYTES}.")
    return files


def extract(path: Path, into: Path) -> Path:
    """Extract a checked zip into `into`, never writing more than its headers declared."""
    members = check(path)
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path) as zf:
        for info in members:
            budget = info.file_size
            with zf.open(info) as source, open(into / info.filename, "wb") as target:
                while chunk := source.read(CHUNK):
                    budget -= len(chunk)
                    if budget < 0:
                        raise UnsafeZip(f"The zip member {info.filename!r} holds more than "
                                        f"its header declares.")
                    target.write(chunk)
    return into
