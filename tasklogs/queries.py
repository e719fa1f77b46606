"""Reading a task's log: filters, the newest page, the tail after a cursor, text lines."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.db.models import Q, QuerySet

from tasklogs.models import Level, LogLine

TEXT_CHUNK_LINES = 1000


@dataclass(frozen=True)
class LogFilter:
    """What a reader asked for; None or empty means "any"."""

    q: str = ""
    node: str = ""
    min_level: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    after: int | None = None  # cursor: lines with a larger id only


@dataclass(frozen=True)
class Page:
    lines: list[LogLine]
    next_after: int


def task_lines(tenant_id: object, task_id: object) -> QuerySet[LogLine]:
    """Every line of one task of one tenant."""
    return LogLine.objects.for_tenant(tenant_id).filter(task_id=task_id)


def matching(tenant_id: object, task_id: object, wanted: LogFilter) -> QuerySet[LogLine]:
    """The task's lines that pass the filter, unordered."""
    lines = task_lines(tenant_id, task_id)
    if wanted.q:
        lines = lines.filter(message__icontains=wanted.q)
    if wanted.node:
        lines = lines.filter(node=wanted.node)
    if wanted.min_level is not None:
        lines = lines.filter(level__gte=wanted.min_level)
    if wanted.since is not None:
        lines = lines.filter(time__gte=wanted.since)
    if wanted.until is not None:
        lines = lines.filter(time__lt=wanted.until)
    if wanted.after is not None:
        lines = lines.filter(id__gt=wanted.after)
    return lines


def head(tenant_id: object, task_id: object) -> int | None:
    """The largest cursor of the task's lines, filters aside (None when it has none)."""
    return (task_lines(tenant_id, task_id).order_by("-id")
            .values_list("id", flat=True).first())


def page(tenant_id: object, task_id: object, wanted: LogFilter, limit: int) -> Page:
    """Without a cursor the newest `limit` matching lines; with one, the oldest after it.

    Lines come sorted by (time, cursor). `next_after` is where the next tail read starts: the
    task's head read *before* the lines (so no line between the two reads is passed over),
    or the last cursor returned when more matching lines may follow. Writers of one task are
    serialised (`tasklogs.api.write`), so every line committing later has a larger cursor.
    """
    top = head(tenant_id, task_id)
    start = wanted.after or 0
    if top is None:
        return Page([], start)
    lines = matching(tenant_id, task_id, wanted).filter(id__lte=top)
    if wanted.after is None:
        found = list(lines.order_by("-id")[:limit])
        next_after = top
    else:
        found = list(lines.order_by("id")[:limit])
        next_after = found[-1].id if len(found) == limit else top
    found.sort(key=lambda line: (line.time, line.id))
    return Page(found, max(next_after, start))


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the rest of the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_text(line: LogLine) -> str:
    """One line of a downloaded or persisted log file."""
    return f"{iso(line.time)} [{line.node}] {Level(line.level).label} {line.message}\n"


def _block(lines: QuerySet[LogLine], after: tuple[datetime, int] | None
           ) -> tuple[str, tuple[datetime, int] | None]:
    """Text of the next lines in (time, cursor) order after a position, and the position to
    go on from (None once the lines are exhausted). Keyset paging: each read is one short,
    indexed query, and no database cursor stays open between blocks."""
    if after is not None:
        moment, cursor = after
        lines = lines.filter(time__gte=moment).filter(Q(time__gt=moment) | Q(id__gt=cursor))
    rows = list(lines.order_by("time", "id")[:TEXT_CHUNK_LINES])
    text = "".join(as_text(line) for line in rows)
    more = len(rows) == TEXT_CHUNK_LINES
    return text, (rows[-1].time, rows[-1].id) if more else None


def text_chunks(lines: QuerySet[LogLine], header: str = "") -> Iterator[str]:
    """The lines as text in (time, cursor) order, a block at a time."""
    if header:
        yield header
    after = None
    while True:
        text, after = _block(lines, after)
        if text:
            yield text
        if after is None:
            return


async def text_chunks_async(lines: QuerySet[LogLine], header: str = "") -> AsyncIterator[str]:
    """`text_chunks` for an ASGI server, which would otherwise read a sync stream whole."""
    if header:
        yield header
    after = None
    while True:
        text, after = await sync_to_async(_block)(lines, after)
        if text:
            yield text
        if after is None:
            return


def newest_in_time_order(lines: QuerySet[LogLine], cap: int) -> tuple[QuerySet[LogLine], bool]:
    """The newest `cap` of the lines (by time, then cursor); and whether older ones were left
    out."""
    edge = lines.order_by("-time", "-id").values_list("time", "id")[cap - 1:cap].first()
    if edge is None:
        return lines.order_by("time", "id"), False
    moment, cursor = edge
    kept = lines.filter(time__gte=moment).filter(Q(time__gt=moment) | Q(id__gte=cursor))
    truncated = lines.filter(time__lte=moment).filter(Q(time__lt=moment) | Q(id__lt=cursor))
    return kept.order_by("time", "id"), truncated.exists()
