"""A task row to hang log lines on, and a quick way to write lines at given times."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tasklogs.api import LogLineIn, write
from tasks.models import Task

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_task(tenant_id: object) -> Task:
    """A task read-model row, written directly (the logs only need it to exist)."""
    now = timezone.now()
    task_id = uuid.uuid4()
    return Task.objects.create(
        id=task_id, tenant_id=tenant_id, project_id=uuid.uuid4(), job_id=task_id, version=1,
        name="Logged", scenario="classification", model_name="resnet18",
        train_dataset_id=uuid.uuid4(), metric_name="accuracy", max_duration_s=3600,
        billing_mode="postpaid", spec_id=uuid.uuid4(), spec_name="cpu-small", state="running",
        created_at=now, updated_at=now, last_position=0)


@pytest.fixture
def task_of_a(tenant_a) -> Task:
    return make_task(tenant_a.tenant_id)


def lines(*specs: tuple, start: datetime = T0) -> list[LogLineIn]:
    """(message,) or (message, level) or (message, level, node) or (..., seconds after start)."""
    made = []
    for i, spec in enumerate(specs):
        message, level, node, offset = (*spec, *("INFO", "node-0", i)[len(spec) - 1:])
        made.append(LogLineIn(start + timedelta(seconds=offset), node, level, message))
    return made


def write_lines(task: Task, *specs: tuple, start: datetime = T0) -> None:
    write(task.tenant_id, task.id, lines(*specs, start=start))
