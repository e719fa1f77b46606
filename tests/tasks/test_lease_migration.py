"""Task leases join every worker's lease in one table (core.lifecycle): migrated back to before
the move, a database holding a live attempt's `TaskLease` migrates forward into a `WorkLease`
the lease sweep reads (same last beat), and back again."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.models import WorkLease
from tasks.worker_commands import lease_key

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("tasks", "0003_trainedmodel_moves_to_modelregistry")]
STATE = [*BEFORE, ("core", "0001_work_lease")]  # the models as they were, core's lease too


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader: the state just migrated to


def test_a_task_lease_becomes_a_work_lease_and_back():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    task_id, beat = uuid.uuid4(), timezone.now() - timedelta(seconds=30)
    old_apps = migrate(BEFORE).loader.project_state(STATE).apps
    try:
        old_apps.get_model("tasks", "TaskLease").objects.create(
            task_id=task_id, attempt=2, node="gpu-host:7", last_seen_at=beat)
    finally:
        migrate(latest)

    lease = WorkLease.objects.get(key=lease_key(task_id))
    assert (lease.holder, lease.last_seen_at) == ("gpu-host:7:attempt-2", beat)
    with connection.cursor() as cursor:
        assert "tasks_tasklease" not in connection.introspection.table_names(cursor)

    try:
        back = migrate(BEFORE).loader.project_state(STATE).apps
        row = back.get_model("tasks", "TaskLease").objects.get(task_id=task_id)
        assert (row.attempt, row.node, row.last_seen_at) == (2, "gpu-host:7", beat)
        assert not back.get_model("core", "WorkLease").objects.filter(
            key=lease_key(task_id)).exists()
    finally:
        migrate(latest)
