"""The trained-model table moves from tasks to modelregistry with its rows: migrated back to
before the move, a database holding an old-shape row migrates forward and keeps it, its
lineage filled from the task's row and its split the one training used then."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from modelregistry.models import TrainedModel

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("tasks", "0002_policies_start_at_head"), ("modelregistry", None)]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader: the state just migrated to


def test_an_old_row_survives_the_move(tenant_a):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old_apps = migrate(BEFORE).loader.project_state([BEFORE[0]]).apps
    try:
        task_id, model_id, train, now = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), timezone.now()
        old_apps.get_model("tasks", "Task").objects.create(
            id=task_id, tenant_id=tenant_a.tenant_id, project_id=uuid.uuid4(), job_id=task_id,
            version=2, name="digits", scenario="classification", model_name="small_cnn",
            train_dataset_id=train, test_dataset_id=None, config={}, metric_name="accuracy",
            max_duration_s=60, billing_mode="postpaid", spec_id=uuid.uuid4(),
            spec_name="cpu", state="succeeded", model_id=model_id, created_at=now,
            updated_at=now, last_position=1)
        old_apps.get_model("tasks", "TrainedModel").objects.create(
            id=model_id, tenant_id=tenant_a.tenant_id, project_id=uuid.uuid4(), task_id=task_id,
            version=2, scenario="classification", model_name="small_cnn", labels=["a", "b"],
            metrics={"accuracy": 0.5}, artifact_key="models/m.zip", input_size=[32, 32],
            created_at=now)
    finally:
        migrate(latest)

    row = TrainedModel.objects.unscoped().get(id=model_id)
    assert (row.task_id, row.version, row.labels, row.metrics, row.artifact_key) == (
        task_id, 2, ["a", "b"], {"accuracy": 0.5}, "models/m.zip")
    assert (row.train_dataset_id, row.test_dataset_id) == (train, None)
    assert (row.validation_fraction, row.split_seed) == (0.2, 0)
    with connection.cursor() as cursor:
        assert "tasks_trainedmodel" not in connection.introspection.table_names(cursor)
