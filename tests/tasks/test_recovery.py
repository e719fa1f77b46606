"""Tasks found again after a crash (issue 16 item 8): a queued task whose message was lost is
sent again and trains once, billed once; when `make run` starts again, an attempt that was
running in the dead process is interrupted at once and retried."""

from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from billing import api as billing
from billing import wallet
from billing.models import Meter
from core import recovery
from core.models import WorkLease
from eventlog.models import Event
from tasks import runner
from tasks.aggregates import TaskAggregate
from tasks.models import Task
from tasks.recovery import recover_tasks
from tasks.worker_commands import lease_key
from tests.workers import stub_worker

from .conftest import task_payload, upload_digits, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued(api, funded, project_of_a, cpu_spec, settings):
    """A task queued on a broker that then died with its message."""
    settings.TASK_PROGRESS_INTERVAL_S = 0.0
    with stub_worker():
        dataset = upload_digits(api, funded, project_of_a["id"])
    created = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec, epochs=1), format="json")
    assert created.status_code == 201, created.content
    dramatiq.get_broker().flush_all()
    return created.json()


def types_of(task_id: str) -> list[str]:
    return list(Event.objects.filter(stream_id=task_id).order_by("version")
                .values_list("type", flat=True))


def test_a_queued_task_whose_message_was_lost_trains_once_and_is_billed_once(
        funded, queued, settings):
    settings.RECOVERY_REQUEUE_AFTER_S = 60.0
    assert recover_tasks(recovery.Sweep()) == 0  # its message may still be on its way
    with stub_worker(threads=2):
        assert recover_tasks(recovery.Sweep(now=timezone.now() + timedelta(seconds=61))) == 1
        task = wait_for(lambda: (lambda t: t if t.state not in ("queued", "running") else None)(
            Task.objects.unscoped().get(id=queued["id"])), timeout=120, what="the task")
    assert (task.state, task.attempt) == ("succeeded", 1)
    assert runner.run_attempt(queued["id"], 1) == "skipped"  # the original, redelivered late

    assert types_of(queued["id"]).count("TaskStarted") == 1
    [meter] = Meter.objects.for_tenant(funded.tenant_id).filter(resource_id=queued["id"])
    assert (meter.state, meter.frozen) == ("stopped", 0)
    frozen = Event.objects.filter(stream_id=funded.tenant_id, type="FundsFrozen",
                                  data__meter_id=str(meter.id)).count()
    assert frozen == 1
    assert wallet.view(funded.tenant_id).frozen == 0


def test_make_run_starting_again_interrupts_its_dead_attempts_at_once(funded, queued, settings):
    settings.TASK_LEASE_TIMEOUT_S = 3600  # the lease check alone would wait an hour
    assert runner.claim(queued["id"], 1, "dead-host:1") is not None
    last_beat = timezone.now() - timedelta(seconds=2)
    WorkLease.objects.create(key=lease_key(queued["id"]), holder="dead-host:1:x",
                             last_seen_at=last_beat)

    recovery.sweep(lost_all=True)

    task = Task.objects.unscoped().get(id=queued["id"])
    assert (task.state, task.attempt) == ("queued", 2)
    assert types_of(queued["id"])[-2:] == ["TaskInterrupted", "TaskQueued"]
    first = Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=queued["id"]).order_by("started_at").first()
    assert (first.stop_reason, first.stopped_at) == ("interrupted", last_beat)
    sent = [dramatiq.Message.decode(m).args for m in dramatiq.get_broker().queues["gpu"].queue]
    assert (queued["id"], 2) in sent


def test_a_queued_task_whose_meter_vanished_is_queued_again_on_a_new_meter(
        funded, queued, settings):
    settings.RECOVERY_REQUEUE_AFTER_S = 60.0
    # it waited past BILLING_LEASE_TIMEOUT_S: settlement stopped its meter as vanished
    billing.stop_resource(funded.tenant_id, "task", queued["id"], reason=billing.VANISHED)

    assert recover_tasks(recovery.Sweep(now=timezone.now() + timedelta(seconds=61))) == 1

    task = Task.objects.unscoped().get(id=queued["id"])
    assert (task.state, task.attempt) == ("queued", 1)  # a message waiting keeps its place
    old, new = Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=queued["id"]).order_by("started_at")
    assert (old.state, old.stop_reason, new.state) == ("stopped", "vanished", "running")
    assert TaskAggregate.load(funded.tenant_id, queued["id"]).meter_id == str(new.id)
    sent = [dramatiq.Message.decode(m).args for m in dramatiq.get_broker().queues["gpu"].queue]
    assert sent == [(queued["id"], 1)]
