"""What other apps may call: write a task's log lines, capture `logging` into them, purge old
lines, persist a task's log to object storage; and the log endpoint's view, to subclass.

The log store is not the event log: lines are plain rows, purged after the retention period.
"""

import contextlib
import gzip
import logging
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from tasklogs import queries
from tasklogs.models import MAX_MESSAGE_CHARS, MAX_NODE_CHARS, Level, LogLine
from tasklogs.views import LOG_SCHEMA, LogView

# LogView and LOG_SCHEMA (HTTP, from tasklogs.views): the log endpoint of another owner of log
# lines (a service) subclasses LogView and names its owner; the filters and shapes stay one.
__all__ = ["LOG_SCHEMA", "LogCapture", "LogLineIn", "LogView", "capture", "persist",
           "persist_key", "purge", "write"]

INSERT_BATCH = 500
PURGE_BATCH = 10_000
MAX_BUFFERED = 10_000  # lines a capture holds while the database refuses them
EXIT_JOIN_TIMEOUT_S = 30.0
_LOCK_NAMESPACE = 0x7461736B  # "task": the first key of the per-task advisory lock


@dataclass(frozen=True)
class LogLineIn:
    """One line to store: `level` is a level name ("INFO") or a `logging` number."""

    time: datetime
    node: str
    level: str | int
    message: str


def level_number(level: str | int) -> int:
    """A level name or number as one of the five stored levels (custom ones round down)."""
    if isinstance(level, str):
        number = logging.getLevelName(level.strip().upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {level!r}")
        level = number
    return max((value for value in Level.values if value <= level), default=Level.DEBUG)


def _row(tenant_id: object, task_id: object, line: LogLineIn) -> LogLine:
    moment = line.time if timezone.is_aware(line.time) else line.time.replace(tzinfo=UTC)
    return LogLine(tenant_id=tenant_id, task_id=task_id, time=moment,
                   node=str(line.node)[:MAX_NODE_CHARS], level=level_number(line.level),
                   message=str(line.message)[:MAX_MESSAGE_CHARS])


def _lock_task(task_id: object) -> None:
    """Serialise the writers of one task (PostgreSQL), so cursors commit in order.

    A tail reader asks for ids after the last one it saw; with two writers of the same task
    interleaving, a smaller id could commit after a larger one was read and be passed over.
    SQLite serialises all writers already.
    """
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(uuid.UUID(str(task_id)).bytes[:4], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, key])


def write(tenant_id: object, task_id: object, lines: Iterable[LogLineIn]) -> int:
    """Store lines of a task's log (messages cut at 10,000 characters); returns how many."""
    rows = [_row(tenant_id, task_id, line) for line in lines]
    if not rows:
        return 0
    with transaction.atomic():
        _lock_task(task_id)
        LogLine.objects.bulk_create(rows, batch_size=INSERT_BATCH)
    return len(rows)


def purge(older_than: timedelta) -> int:
    """Delete every tenant's lines older than `older_than`, in batches; returns how many."""
    cutoff = timezone.now() - older_than
    old = LogLine.objects.unscoped().filter(time__lt=cutoff)
    total = 0
    while ids := list(old.values_list("id", flat=True)[:PURGE_BATCH]):
        deleted, _ = LogLine.objects.unscoped().filter(id__in=ids).delete()
        total += deleted
    return total


def persist_key(tenant_id: object, task_id: object) -> str:
    """Where `persist` stores a task's log."""
    return f"logs/{tenant_id}/{task_id}.log.gz"


def persist(tenant_id: object, task_id: object) -> str:
    """Write the task's log as gzip text to the default storage (replacing an earlier copy);
    returns its key."""
    key = persist_key(tenant_id, task_id)
    lines = queries.task_lines(tenant_id, task_id).order_by("time", "id")
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
            for chunk in queries.text_chunks(lines):
                packed.write(chunk.encode("utf-8"))
        raw.seek(0)
        if default_storage.exists(key):
            default_storage.delete(key)
        return default_storage.save(key, File(raw, name=key))


# --- capturing `logging` ---------------------------------------------------------------------


class LogCapture(logging.Handler):
    """A root handler that keeps one thread's records and writes them from its own thread.

    The captured thread only appends to a buffer; a flusher thread (with its own database
    connection, so the caller's transactions are never touched) writes it every
    `flush_interval_s`, as soon as `batch_size` lines wait, and when the capture ends. A failed
    write is reported on stderr and retried at the next flush while fewer than 10,000 lines
    wait; beyond that the oldest are dropped (`dropped` counts them).
    """

    def __init__(self, tenant_id: object, task_id: object, node: str, *, level: int,
                 flush_interval_s: float, batch_size: int):
        super().__init__(level)
        self.tenant_id, self.task_id, self.node = tenant_id, task_id, node
        self.thread_id = threading.get_ident()
        self.flush_interval_s, self.batch_size = flush_interval_s, batch_size
        self.written = self.dropped = 0
        self._buffer: list[LogLineIn] = []
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._run, daemon=True,
                                         name=f"tasklogs-flush-{task_id}")

    def handle(self, record: logging.LogRecord) -> bool:
        """Only records of the captured thread go further (cheap: no lock taken)."""
        if record.thread != self.thread_id:
            return False
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the record; wake the flusher when a batch is full."""
        try:
            line = LogLineIn(datetime.fromtimestamp(record.created, UTC), self.node,
                             record.levelno, self.format(record))
        except Exception:
            self.handleError(record)
            return
        with self._buffer_lock:
            self._buffer.append(line)
            if len(self._buffer) > MAX_BUFFERED:
                del self._buffer[0]
                self.dropped += 1
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake.set()

    def start(self) -> None:
        """Start the flusher and listen on the root logger."""
        self._flusher.start()
        logging.getLogger().addHandler(self)

    def stop(self) -> None:
        """Stop listening, write what is left, and wait for the flusher (up to 30 s)."""
        logging.getLogger().removeHandler(self)
        self._stopping.set()
        self._wake.set()
        self._flusher.join(EXIT_JOIN_TIMEOUT_S)
        if self._flusher.is_alive():
            _report(f"tasklogs: the log writer of task {self.task_id} is still busy after "
                    f"{EXIT_JOIN_TIMEOUT_S:.0f} s; its last lines may be lost.")
        self.close()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
                final = self._stopping.is_set()
                self._flush(final=final)
                if final:
                    return
        finally:
            connections.close_all()  # this thread's connections only

    def _flush(self, *, final: bool) -> None:
        with self._buffer_lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            close_old_connections()
            self.written += write(self.tenant_id, self.task_id, batch)
        except Exception:
            self._keep_for_retry(batch, final=final)

    def _keep_for_retry(self, batch: list[LogLineIn], *, final: bool) -> None:
        error = traceback.format_exc(limit=3)
        if final:
            self.dropped += len(batch)
            _report(f"tasklogs: could not store {len(batch)} log line(s) of task "
                    f"{self.task_id}; they are dropped.\n{error}")
            return
        with self._buffer_lock:
            self._buffer[:0] = batch
            overflow = max(0, len(self._buffer) - MAX_BUFFERED)
            del self._buffer[:overflow]
            self.dropped += overflow
        _report(f"tasklogs: could not store {len(batch)} log line(s) of task {self.task_id}; "
                f"retrying at the next flush.\n{error}")


def _report(message: str) -> None:
    """Tell the operator on stderr (never through `logging`, which may be what failed)."""
    with contextlib.suppress(Exception):  # nowhere left to report to
        print(message, file=sys.stderr, flush=True)


@contextmanager
def capture(tenant_id: object, task_id: object, node: str, *, level: int = logging.INFO,
            flush_interval_s: float = 1.0, batch_size: int = 200) -> Iterator[LogCapture]:
    """Store every `logging` record of the calling thread at `level` or above as the task's
    log while the block runs.

    Records reach it through the root logger, so loggers with `propagate=False` and records
    below a logger's effective level are not seen. Writing never raises into the block.
    """
    handler = LogCapture(tenant_id, task_id, node, level=level,
                         flush_interval_s=flush_interval_s, batch_size=batch_size)
    handler.start()
    try:
        yield handler
    finally:
        handler.stop()
