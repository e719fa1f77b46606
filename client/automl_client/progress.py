"""Progress on a terminal without a dependency: one line redrawn with a carriage return."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def duration(seconds: float | None) -> str:
    """75 -> '1:15'; None -> '?'."""
    if seconds is None:
        return "?"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Line:
    """A status line on `stream` (stderr): redrawn in place on a terminal, and written as
    plain lines, at most one a second, when the stream is a file or a pipe."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.width = 0
        self.last_plain = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        """Show `text` as the current status."""
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        elif force or time.monotonic() - self.last_plain >= 1.0:
            self.stream.write(text + "\n")
            self.last_plain = time.monotonic()
        self.stream.flush()

    def done(self, text: str | None = None) -> None:
        """End the status line (with a last text)."""
        if text is not None:
            self.show(text, force=True)
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
        self.width = 0


def transfer(line: Line, verb: str):  # noqa: ANN201 - a Progress callback
    """A progress callback drawing '<verb> 42% 1.2 MiB / 2.9 MiB'."""
    def report(done: int, total: int | None) -> None:
        if total:
            line.show(f"{verb} {100 * done // total:3d}% {human_bytes(done)} / "
                      f"{human_bytes(total)}", force=done >= total)
        else:
            line.show(f"{verb} {human_bytes(done)}")
    return report
