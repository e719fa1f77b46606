"""Uploaded zips are hostile until checked: the central directory is inspected before anything
is stored, and every extraction re-checks each member and streams it under a byte budget.

Refused: anything that is not a readable zip; member names with `..`, absolute paths, drive
letters, NUL or control characters (backslashes count as separators, so `a\\..\\..\\x` is
`..` too); the same path twice, or as both a file and a folder; symbolic links and other special
files; encrypted members and unknown compression methods; more than `max_files` members; more
than `max_uncompressed_bytes` in all; a member of at least RATIO_FLOOR_BYTES that expands more
than `max_ratio` times (a zip bomb). A header that lies about a member's size cannot get past
the budget: extraction counts the bytes it writes, never the sizes the zip declares.
"""

import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

GIB = 1024**3
MAX_NAME_LENGTH = 1024
MAX_DEPTH = 32
# A member smaller than this cannot hurt whatever its ratio (the total budget still applies);
# small, highly compressible files (blank masks, repetitive JSON) are common in real datasets.
RATIO_FLOOR_BYTES = 1024 * 1024
CHUNK_BYTES = 1024 * 1024
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
SKIPPED_NAMES = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_BAD_ZIP = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError,
            OverflowError, NotImplementedError, RuntimeError, UnicodeDecodeError, OSError,
            IndexError, KeyError)


@dataclass(frozen=True)
class ZipLimits:
    """How much a dataset zip may hold."""

    max_uncompressed_bytes: int = 4 * GIB
    max_ratio: float = 200.0
    max_files: int = 200_000

    @classmethod
    def from_settings(cls) -> "ZipLimits":
        """The limits in force: DATASET_MAX_UNCOMPRESSED_BYTES, DATASET_MAX_RATIO and
        DATASET_MAX_FILES, each defaulting to this class's value."""
        from django.conf import settings

        return cls(
            max_uncompressed_bytes=getattr(settings, "DATASET_MAX_UNCOMPRESSED_BYTES",
                                           cls.max_uncompressed_bytes),
            max_ratio=getattr(settings, "DATASET_MAX_RATIO", cls.max_ratio),
            max_files=getattr(settings, "DATASET_MAX_FILES", cls.max_files),
        )


class UnsafeArchive(Exception):
    """The zip is refused; `file` names the member at fault ("" for the zip as a whole)."""

    def __init__(self, message: str, file: str = "", code: str = "unsafe_archive"):
        super().__init__(message)
        self.message, self.file, self.code = message, file, code

    def as_issue(self) -> dict[str, str]:
        """The Dataset resource's error shape."""
        return {"file": self.file, "message": self.message, "code": self.code}


@dataclass(frozen=True)
class Member:
    """A checked member: its zip entry and its path inside the dataset as parts."""

    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool

    @property
    def path(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True)
class Summary:
    """What the central directory declares (sizes are checked again while extracting)."""

    file_count: int
    uncompressed_bytes: int


def _shown(name: str) -> str:
    """A member name as it may appear in a message: printable and short."""
    return _CONTROL.sub("?", name)[:200]


def member_parts(name: str) -> tuple[str, ...]:
    """The path parts of a member name, or UnsafeArchive when it could land outside the root."""
    shown = _shown(name)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise UnsafeArchive(f"Member name is empty or longer than {MAX_NAME_LENGTH} characters; "
                            "rename it and zip again.", shown)
    if _CONTROL.search(name):
        raise UnsafeArchive("Member name holds a NUL or control character; rename it and zip "
                            "again.", shown)
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise UnsafeArchive("Member has an absolute path; zip the dataset with paths relative "
                            "to its folder.", shown)
    parts = tuple(p for p in unified.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive("Member path contains '..' (it would land outside the dataset); "
                            "zip the dataset with paths inside its folder.", shown)
    if not parts or len(parts) > MAX_DEPTH:
        raise UnsafeArchive(f"Member path is empty or nested deeper than {MAX_DEPTH} folders.",
                            shown)
    return parts


def _check_member(info: zipfile.ZipInfo, limits: ZipLimits) -> Member:
    name = info.orig_filename
    parts = member_parts(name)
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise UnsafeArchive("Member is a symbolic link; put the real file in the zip instead.",
                            _shown(name))
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchive("Member is a special file (device, pipe or socket); remove it.",
                            _shown(name))
    if info.flag_bits & 0x1:
        raise UnsafeArchive("Member is encrypted; upload a zip without a password.", _shown(name))
    if info.compress_type not in METHODS:
        raise UnsafeArchive(f"Member uses compression method {info.compress_type}, which is "
                            "not supported; zip it with deflate or store.", _shown(name))
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
        raise UnsafeArchive(f"Member expands {ratio:.0f} times (at most {limits.max_ratio:g} "
                            "allowed): this looks like a zip bomb.", _shown(name), "zip_bomb")
    is_dir = name.endswith(("/", "\\")) or kind == stat.S_IFDIR
    return Member(info, parts, is_dir)


def inspect(zf: zipfile.ZipFile, limits: ZipLimits) -> list[Member]:
    """Every member, checked; UnsafeArchive on the first one that is refused."""
    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise UnsafeArchive(f"The zip has {len(infos)} members; at most {limits.max_files} are "
                            "allowed. Split the dataset.", code="too_many_files")
    members, files, folders, total = [], set(), set(), 0
    for info in infos:
        member = _check_member(info, limits)
        key = member.path
        parents = ["/".join(member.parts[:n]) for n in range(1, len(member.parts))]
        if key in files or (not member.is_dir and key in folders) or any(
                p in files for p in parents):
            raise UnsafeArchive("The same path appears twice in the zip, or as both a file and "
                                "a folder; remove or rename one.", _shown(info.orig_filename))
        (folders if member.is_dir else files).add(key)
        folders.update(parents)
        total += 0 if member.is_dir else info.file_size
        if total > limits.max_uncompressed_bytes:
            raise UnsafeArchive(f"The zip expands to more than {limits.max_uncompressed_bytes} "
                                "bytes: this looks like a zip bomb, or the dataset is too large. "
                                "Split it.", code="zip_bomb")
        members.append(member)
    if not files:
        raise UnsafeArchive("The zip holds no files.", code="empty_archive")
    return members


def _open(source: str | os.PathLike[str] | IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except _BAD_ZIP as exc:
        raise UnsafeArchive("The file is not a zip, or the zip is corrupt; upload a .zip "
                            "file.", code="not_a_zip") from exc


def check(source: str | os.PathLike[str] | IO[bytes], limits: ZipLimits) -> Summary:
    """Inspect a zip before it is stored: UnsafeArchive when it is refused."""
    with _open(source) as zf:
        try:
            members = inspect(zf, limits)
        except _BAD_ZIP as exc:
            raise UnsafeArchive("The zip is corrupt; zip the dataset again.",
                                code="not_a_zip") from exc
    files = [m for m in members if not m.is_dir]
    return Summary(len(files), sum(m.info.file_size for m in files))


def _copy(stream: IO[bytes], out: IO[bytes], member: Member, budget: int,
          limits: ZipLimits) -> int:
    written = 0
    while chunk := stream.read(CHUNK_BYTES):
        written += len(chunk)
        if written > member.info.file_size:
            raise UnsafeArchive("Member holds more data than its header declares; the zip is "
                                "corrupt or crafted.", _shown(member.info.orig_filename))
        if written > budget:
            raise UnsafeArchive(f"The zip expands to more than {limits.max_uncompressed_bytes} "
                                "bytes: this looks like a zip bomb.", code="zip_bomb")
        out.write(chunk)
    return written


def extract(source: str | os.PathLike[str] | IO[bytes], dest: Path, limits: ZipLimits) -> None:
    """Extract into the empty folder `dest`, checking every member again and counting bytes."""
    budget = limits.max_uncompressed_bytes
    with _open(source) as zf:
        for member in inspect(zf, limits):
            target = dest.joinpath(*member.parts)
            shown = _shown(member.info.orig_filename)
            try:
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                # "x": never follows or replaces an existing entry (symlink or not).
                with zf.open(member.info) as stream, open(target, "xb") as out:
                    budget -= _copy(stream, out, member, budget, limits)
            except _BAD_ZIP as exc:
                raise UnsafeArchive(f"Member cannot be extracted ({type(exc).__name__}: "
                                    f"{str(exc)[:120]}); the zip is corrupt, zip the dataset "
                                    "again.", shown, "corrupt_archive") from exc


def _visible(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith(".") and entry.name not in SKIPPED_NAMES:
            yield entry


def dataset_root(extracted: Path) -> Path:
    """Where the dataset starts: the extraction folder, or the one folder that wraps it all.

    A zip made by compressing the dataset's folder (not its contents) holds a single top
    folder; it is looked through when it holds folders or `annotations.json` (a folder of
    images alone is a classification label, and stays as it is).
    """
    entries = list(_visible(extracted))
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        inner = entries[0]
        if (inner / "annotations.json").is_file() or any(
                p.is_dir() and not p.is_symlink() for p in _visible(inner)):
            return inner
    return extracted


def copy_stream(source: IO[bytes], target: Path) -> int:
    """Copy a stored file to a local path in chunks; returns the bytes copied."""
    with open(target, "xb") as out:
        shutil.copyfileobj(source, out, CHUNK_BYTES)
        return out.tell()
