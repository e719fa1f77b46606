"""Walking an extracted dataset without leaving its root: no symlink escapes, no special files."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from training_runtime.data import report as codes
from training_runtime.data.report import ValidationReport

SKIPPED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


class FileTooLargeError(Exception):
    """A file is bigger than the limit the reader allows for it."""


def is_skipped(name: str) -> bool:
    """Hidden files and archiver litter (`.DS_Store`, `__MACOSX/`) are skipped silently."""
    return name.startswith(".") or name in SKIPPED_NAMES


def relative(root: Path, path: Path) -> str:
    """`path` relative to `root` as a POSIX string, the form every issue uses."""
    try:
        return PurePosixPath(*path.relative_to(root).parts).as_posix()
    except ValueError:
        return path.name


def _inside(real_root: str, real_path: str) -> bool:
    return real_path == real_root or real_path.startswith(real_root.rstrip(os.sep) + os.sep)


def regular_file_inside(root: Path, path: Path) -> bool:
    """True when `path` resolves (symlinks included) to a regular file inside `root`."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not _inside(real_root, real):
        return False
    try:
        return stat.S_ISREG(os.stat(real).st_mode)
    except OSError:
        return False


def why_unusable(root: Path, path: Path) -> tuple[str, str]:
    """(code, reason) for a referenced file that `regular_file_inside` refused."""
    if path.is_symlink() and not _inside(os.path.realpath(root), os.path.realpath(path)):
        return codes.UNSAFE_PATH, "is a symbolic link pointing outside the dataset (not read)"
    if path.exists():
        return codes.MISSING_IMAGE_FILE, "is not a regular file"
    return codes.MISSING_IMAGE_FILE, "is missing"


def safe_member(root: Path, name: object) -> Path | None:
    """The path a name from an annotation file points at, or None if it names a place outside
    `root`. The check is lexical: call `regular_file_inside` before opening (symlinks).

    Backslashes count as separators (Windows tools write them); absolute paths, drive letters,
    `..` components and NUL bytes are refused.
    """
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 1024:
        return None
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if (not parts or name.startswith(("/", "\\")) or ".." in parts
            or (len(parts[0]) >= 2 and parts[0][1] == ":")):
        return None
    return root.joinpath(*parts)


@dataclass
class Listing:
    """The regular files and the real sub-directories of one directory, sorted by name."""

    files: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)


def list_dir(root: Path, directory: Path, report: ValidationReport) -> Listing:
    """List `directory`; symlinks out of `root`, directory symlinks and special files are skipped
    with a warning and never opened."""
    listing = Listing()
    real_root = os.path.realpath(root)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        report.error(relative(root, directory) or ".", f"Cannot list this folder ({exc.strerror});"
                     " check the upload and try again.", code=codes.UNREADABLE_FILE)
        return listing
    for entry in entries:
        if is_skipped(entry.name):
            continue
        path = Path(entry.path)
        rel = relative(root, path)
        try:
            if entry.is_symlink():
                real = os.path.realpath(path)
                if not _inside(real_root, real):
                    report.warn(rel, "Symbolic link pointing outside the dataset; it was ignored "
                                "and not read. Put the real file in the upload instead.",
                                code=codes.SYMLINK_IGNORED)
                elif stat.S_ISREG(os.stat(real).st_mode):
                    listing.files.append(path)
                else:
                    report.warn(rel, "Symbolic link to a folder or special file; it was ignored."
                                " Put the real files in the upload instead.",
                                code=codes.SYMLINK_IGNORED)
            elif entry.is_dir(follow_symlinks=False):
                listing.dirs.append(path)
            elif entry.is_file(follow_symlinks=False):
                listing.files.append(path)
            else:
                report.warn(rel, "Not a regular file (device, pipe or socket); it was ignored.",
                            code=codes.IGNORED_FILE)
        except OSError as exc:
            report.error(rel, f"Cannot read this entry ({exc.strerror}); check the upload.",
                         code=codes.UNREADABLE_FILE)
    return listing


def read_bounded(path: Path, limit: int) -> bytes:
    """Read at most `limit` bytes; raise FileTooLargeError if the file holds more.

    The size on disk is not trusted: the read itself is bounded.
    """
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(path)
    return data
