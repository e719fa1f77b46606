"""On PostgreSQL a rebuild builds fresh tables beside the live ones and swaps them in.

Writes go on during the whole rebuild (between its pages, and one that waits on the swap's
lock): none is lost, and the swapped tables hold exactly what an in-place replay gives.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from accounts.models import Project
from eventlog import projections, rebuild
from eventlog.models import ProjectionCheckpoint
from tests.conftest import sign_up
from tests.eventlog.test_rebuild import scripted_history, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def indexes(table: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                       "ORDER BY indexname", [table])
        return cursor.fetchall()


def shadow_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE '%%__rebuild'")
        return [row[0] for row in cursor.fetchall()]


def test_a_rebuild_into_shadow_tables_loses_no_write_made_while_it_runs(api, postgres_only):
    scripted_history(api)
    owner = sign_up(api, tenant="Writer")
    client = api.as_(owner)
    live_indexes = indexes("accounts_project")
    seen, late = [], []

    def create(name: str) -> None:
        response = client.post("/api/v1/projects/", {"name": name}, format="json")
        assert response.status_code == 201, response.content

    def in_thread(name: str) -> threading.Thread:
        def run() -> None:
            try:
                create(name)
            finally:
                connection.close()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def progress(report: rebuild.Progress) -> None:
        seen.append(report.phase)
        if report.phase == "scan" and len(seen) <= 4:
            create(f"during scan {len(seen)}")  # committed between two pages
            assert Project.objects.unscoped().filter(name=f"during scan {len(seen)}").exists()
        if report.phase == "scanned":
            create("after the scan")  # only the catch-up under the swap's lock sees it
        if report.phase == "swap":
            late.append(in_thread("during swap"))  # waits on the lock, then writes

    handled = projections.rebuild(["accounts.projects"], page=3, progress=progress, shadow=True)
    for thread in late:
        thread.join(timeout=30)

    assert "swap" in seen and seen[-1] == "done"
    assert handled["accounts.projects"] >= 15
    swapped = snapshot()["accounts.Project"]
    names = {row["name"] for row in swapped}
    assert {"during scan 1", "during scan 4", "after the scan", "during swap"} <= names
    assert len(swapped) == 10 + 4 + 2
    assert indexes("accounts_project") == live_indexes  # migrations find them by name
    assert shadow_tables() == []

    projections.rebuild(["accounts.projects"], shadow=False)  # the log's truth, replayed in place
    assert snapshot()["accounts.Project"] == swapped
    checkpoint = ProjectionCheckpoint.objects.get(name="accounts.projects").position
    assert checkpoint == max(row["last_position"] for row in swapped)


def test_the_live_tables_keep_serving_while_the_shadows_fill(api, postgres_only):
    scripted_history(api)
    served = []

    def progress(report: rebuild.Progress) -> None:
        if report.phase == "scan":
            served.append(Project.objects.unscoped().count())

    projections.rebuild(["accounts.projects"], page=2, progress=progress, shadow=True)
    assert served and set(served) == {10}  # never emptied, never half filled


def test_a_writer_that_takes_the_tables_in_another_order_never_fails_the_swap_retries(
        api, postgres_only, monkeypatch):
    """A writer holds the last table the swap locks and then wants the first: the swap's lock
    gives up before the server's deadlock check, lets the writer finish and tries again."""
    from billing.models import Wallet

    sign_up(api, tenant="Money")
    attempts, failures, holding = [], [], threading.Event()
    lock = rebuild._lock
    monkeypatch.setattr(rebuild, "_lock", lambda tables: (attempts.append(1), lock(tables)))

    def writer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE billing_topup IN ACCESS SHARE MODE")
                holding.set()
                time.sleep(0.3)  # the swap has locked billing_wallet and waits for billing_topup
                list(Wallet.objects.unscoped().all())
        except Exception as exc:  # the failure is what the test looks for
            failures.append(exc)
        finally:
            connection.close()

    threads = []

    def progress(report: rebuild.Progress) -> None:
        if report.phase == "scanned":
            threads.append(threading.Thread(target=writer))
            threads[0].start()
            holding.wait(10)

    projections.rebuild(["billing.wallet"], progress=progress, shadow=True)
    threads[0].join(timeout=30)
    assert failures == []
    assert len(attempts) >= 2
