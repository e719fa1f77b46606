"""write, purge and persist: the log store's front door for the worker and the scheduler."""

import gzip
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from core.scheduler import jobs
from tasklogs.api import LogLineIn, persist, persist_key, purge, write
from tasklogs.models import Level, LogLine
from tests.tasklogs.conftest import T0, make_task, write_lines


def rows_of(task) -> list[LogLine]:
    return list(LogLine.objects.for_tenant(task.tenant_id).filter(task_id=task.id).order_by("id"))


def test_write_stores_lines_and_cuts_long_messages(tenant_a, task_of_a):
    naive = datetime(2026, 3, 1, 12, 0)  # naive on purpose: taken as UTC
    written = write(task_of_a.tenant_id, task_of_a.id, [
        LogLineIn(naive, "gpu-0", "warning", "x" * 20_000),
        LogLineIn(T0, "gpu-0", 25, "between INFO and WARNING"),
        LogLineIn(T0, "gpu-0", 5, "below DEBUG")])

    assert written == 3
    long, between, low = rows_of(task_of_a)
    assert (long.level, len(long.message), long.time) == (Level.WARNING, 10_000, T0)
    assert (between.level, low.level) == (Level.INFO, Level.DEBUG)
    assert write(task_of_a.tenant_id, task_of_a.id, []) == 0


def test_write_refuses_an_unknown_level_name(tenant_a, task_of_a):
    with pytest.raises(ValueError, match="LOUD"):
        write(task_of_a.tenant_id, task_of_a.id, [LogLineIn(T0, "n", "LOUD", "x")])


def test_purge_removes_old_lines_only(tenant_a, tenant_b, task_of_a):
    task_of_b = make_task(tenant_b.tenant_id)
    now = timezone.now()
    write_lines(task_of_a, ("old a", "INFO", "n", 0), start=now - timedelta(days=8))
    write_lines(task_of_b, ("old b", "INFO", "n", 0), start=now - timedelta(days=7, minutes=1))
    write_lines(task_of_a, ("fresh a", "INFO", "n", 0), start=now - timedelta(days=6))
    write_lines(task_of_b, ("fresh b", "INFO", "n", 0), start=now)

    assert purge(timedelta(days=7)) == 2
    assert [line.message for line in rows_of(task_of_a) + rows_of(task_of_b)] == [
        "fresh a", "fresh b"]
    assert purge(timedelta(days=7)) == 0


def test_the_purge_runs_hourly_from_the_scheduler(settings, tenant_a, task_of_a, monkeypatch):
    from tasklogs import actors

    settings.TASK_LOG_RETENTION_DAYS = 2
    write_lines(task_of_a, ("3 days", "INFO", "n", 0), start=timezone.now() - timedelta(days=3))
    write_lines(task_of_a, ("1 day", "INFO", "n", 0), start=timezone.now() - timedelta(days=1))
    monkeypatch.setattr(actors.purge_old_lines, "send", actors.purge_old_lines.fn)

    job = next(job for job in jobs() if job.name == "tasklogs.purge")
    assert job.every_s == 3600
    job.fn()

    assert [line.message for line in rows_of(task_of_a)] == ["1 day"]


def test_persist_writes_the_log_gzipped_to_storage(settings, tmp_path, tenant_a, task_of_a):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)}}}
    write_lines(task_of_a, ("second", "INFO", "gpu-0", 5), ("first", "ERROR", "gpu-1", 1))
    make_task(tenant_a.tenant_id)  # lines of other tasks stay out
    expected = ("2026-03-01T12:00:01Z [gpu-1] ERROR first\n"
                "2026-03-01T12:00:05Z [gpu-0] INFO second\n")

    key = persist(task_of_a.tenant_id, task_of_a.id)

    assert key == f"logs/{task_of_a.tenant_id}/{task_of_a.id}.log.gz" == persist_key(
        task_of_a.tenant_id, task_of_a.id)
    with default_storage.open(key) as stored:
        assert gzip.decompress(stored.read()).decode() == expected
    write_lines(task_of_a, ("third", "INFO", "gpu-0", 9))
    assert persist(task_of_a.tenant_id, task_of_a.id) == key  # replaced, not renamed
    with default_storage.open(key) as stored:
        assert gzip.decompress(stored.read()).decode().endswith("INFO third\n")


@pytest.mark.django_db(transaction=True)
def test_a_tail_misses_no_line_of_concurrent_writers(transactional_db, postgres_only, tenant_a):
    """Writers of one task are serialised, so a cursor never passes over a late commit."""
    task = make_task(tenant_a.tenant_id)
    writers, batches, per_batch = 4, 25, 4
    done = threading.Event()
    seen: list[int] = []

    def writer(n: int) -> None:
        try:
            for b in range(batches):
                write(task.tenant_id, task.id, [LogLineIn(datetime.now(UTC), f"w{n}", "INFO",
                                                          f"{n}-{b}-{i}")
                                                for i in range(per_batch)])
        finally:
            from django.db import connection
            connection.close()

    def tail() -> None:
        from tasklogs import queries
        after = 0
        try:
            while True:
                finished = done.is_set()
                found = queries.page(task.tenant_id, task.id, queries.LogFilter(after=after), 1000)
                seen.extend(line.id for line in found.lines)
                after = found.next_after
                if finished:
                    return
        finally:
            from django.db import connection
            connection.close()

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()

    assert len(seen) == len(set(seen)) == writers * batches * per_batch
