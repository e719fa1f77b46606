"""capture(): one thread's `logging` records become a task's log, written from the side."""

import logging
import threading
import time

import pytest

from tasklogs import api
from tasklogs.api import capture
from tasklogs.models import LogLine
from tests.tasklogs.conftest import make_task

pytestmark = pytest.mark.django_db(transaction=True)  # the writer has its own connection
log = logging.getLogger("tests.tasklogs.training")


@pytest.fixture(autouse=True)
def _chatty_logger():
    level = log.level
    log.setLevel(logging.DEBUG)
    yield
    log.setLevel(level)


def stored(task) -> list[tuple[str, str, int]]:
    rows = LogLine.objects.for_tenant(task.tenant_id).filter(task_id=task.id).order_by("id")
    return [(row.node, row.message, row.level) for row in rows]


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_threads_two_tasks_never_mix(tenant_a):
    tasks = [make_task(tenant_a.tenant_id) for _ in range(2)]
    both_capturing = threading.Barrier(3)
    may_finish = threading.Event()

    def train(n: int) -> None:
        with capture(tenant_a.tenant_id, tasks[n].id, f"node-{n}"):
            both_capturing.wait()
            for epoch in range(3):
                log.info("task %d epoch %d", n, epoch)
                log.debug("task %d detail", n)  # below INFO: not kept
            may_finish.wait(5)

    threads = [threading.Thread(target=train, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    both_capturing.wait()
    log.warning("the main thread is no task's")
    may_finish.set()
    for thread in threads:
        thread.join()

    for n, task in enumerate(tasks):
        assert stored(task) == [(f"node-{n}", f"task {n} epoch {e}", logging.INFO)
                                for e in range(3)]


def test_lines_left_in_the_buffer_are_written_at_exit(tenant_a):
    task = make_task(tenant_a.tenant_id)

    with capture(tenant_a.tenant_id, task.id, "n", flush_interval_s=60, batch_size=1000) as cap:
        log.info("one")
        log.error("two")
        assert stored(task) == []

    assert stored(task) == [("n", "one", logging.INFO), ("n", "two", logging.ERROR)]
    assert (cap.written, cap.dropped) == (2, 0)


def test_a_full_batch_and_the_interval_each_flush_while_capturing(tenant_a):
    by_size, by_time = make_task(tenant_a.tenant_id), make_task(tenant_a.tenant_id)

    with capture(tenant_a.tenant_id, by_size.id, "n", flush_interval_s=60, batch_size=3):
        for i in range(3):
            log.info("line %d", i)
        wait_for(lambda: len(stored(by_size)) == 3)
    with capture(tenant_a.tenant_id, by_time.id, "n", flush_interval_s=0.05):
        log.info("alone")
        wait_for(lambda: len(stored(by_time)) == 1)


def test_level_and_tracebacks(tenant_a):
    task = make_task(tenant_a.tenant_id)

    with capture(tenant_a.tenant_id, task.id, "n", level=logging.WARNING):
        log.info("quiet")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("step failed")

    ((_node, message, level),) = stored(task)
    assert level == logging.ERROR
    assert message.startswith("step failed\nTraceback") and "RuntimeError: boom" in message


def test_a_failing_database_write_never_reaches_the_caller(tenant_a, monkeypatch, capsys):
    task = make_task(tenant_a.tenant_id)
    calls = []
    real_write = api.write

    def flaky(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is down")
        return real_write(*args)

    monkeypatch.setattr(api, "write", flaky)
    with capture(tenant_a.tenant_id, task.id, "n", flush_interval_s=0.05) as cap:
        log.info("kept for the retry")
        wait_for(lambda: len(stored(task)) == 1)
    assert "database is down" in capsys.readouterr().err
    assert (cap.written, cap.dropped) == (1, 0)

    monkeypatch.setattr(api, "write", lambda *args: 1 / 0)
    with capture(tenant_a.tenant_id, task.id, "n", flush_interval_s=60) as cap:
        log.info("lost at exit")
    assert cap.dropped == 1
    assert "dropped" in capsys.readouterr().err
    assert stored(task) == [("n", "kept for the retry", logging.INFO)]
