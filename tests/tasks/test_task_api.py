"""Task creation rules, versions, compare, lineage, templates, and lost workers (no training)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import wallet
from billing.models import Meter
from core import lifecycle
from core.models import WorkLease
from eventlog.models import Event
from eventlog.store import load_stream
from tasks.aggregates import TaskAggregate
from tasks.models import Task
from tasks.recovery import KIND
from tasks.runner import claim
from tasks.worker_commands import lease_key
from tests.datasets.zips import folders_files, make_zip, upload, validate

from .conftest import task_payload


@pytest.fixture
def dataset(api, tenant_a, project_of_a):
    created = upload(api.as_(tenant_a), project_of_a["id"], make_zip(folders_files()))
    validate(created.json()["id"])
    return created.json()


@pytest.fixture
def payload(funded, project_of_a, dataset, cpu_spec):
    return task_payload(project_of_a["id"], dataset["id"], cpu_spec)


def create(api, account, payload, status=201):
    response = api.as_(account).post("/api/v1/tasks/", payload, format="json")
    assert response.status_code == status, response.content
    return response.json()


@pytest.mark.parametrize("change, field", [
    ({"scenario": "detection", "model": None}, "train_dataset"),  # a classification dataset
    ({"model": "resnet9000"}, "model"),
    ({"train_dataset": "00000000-0000-4000-8000-000000000000"}, "train_dataset"),
    ({"project": "00000000-0000-4000-8000-000000000000"}, "project"),
    ({"spec": "no-such-spec"}, "spec"),
    ({"billing_mode": "free"}, "billing_mode"),
    ({"target_metric": 1.5}, "target_metric"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs"),
    ({"name": None}, "name"),
])
def test_bad_task_input_names_the_field_and_creates_nothing(api, funded, payload, change,
                                                            field):
    body = {**payload, **change}
    if change.get("name", 0) is None:
        del body["name"]
    error = create(api, funded, body, status=400)["error"]
    assert field in error["fields"], error
    assert not Task.objects.for_tenant(funded.tenant_id).exists()
    assert wallet.view(funded.tenant_id).frozen == 0


def test_another_tenants_dataset_is_not_found(api, tenant_b, payload, cpu_spec):
    wallet.adjust(tenant_b.tenant_id, 100_000, "funds", "staff:test")
    project = api.as_(tenant_b).post("/api/v1/projects/", {"name": "B"}, format="json").json()
    error = create(api, tenant_b, {**payload, "project": project["id"]}, status=400)["error"]
    assert error["fields"]["train_dataset"] == ["Dataset not found."]


def test_a_task_is_queued_with_its_defaults_and_freeze(api, funded, payload):
    task = create(api, funded, {**payload, "epochs": None, "model": None})
    assert (task["state"], task["algorithm"], task["metric_name"]) == (
        "queued", "resnet18", "accuracy")
    assert task["max_duration_s"] == 3600 and task["stop_reason"] is None
    meter = Meter.objects.for_tenant(funded.tenant_id).get(resource_id=task["id"])
    assert (meter.state, meter.frozen) == ("running", 7_200)


def test_stopping_a_queued_task_stops_it_at_once_and_releases_the_freeze(api, funded, payload):
    task = create(api, funded, payload)
    response = api.as_(funded).post(f"/api/v1/tasks/{task['id']}/stop/")
    assert response.status_code == 202
    assert (response.json()["state"], response.json()["stop_reason"]) == ("stopped", "user")
    assert wallet.view(funded.tenant_id).frozen == 0
    again = api.as_(funded).post(f"/api/v1/tasks/{task['id']}/stop/")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "task_not_running")


def test_a_stop_that_meets_the_worker_starting_the_task_is_checked_again_not_refused(
        api, funded, payload, monkeypatch):
    task = create(api, funded, payload)
    assert claim(task["id"], 1, "node-a") is not None
    load, stale = TaskAggregate.load, []

    def read_before_the_worker_wrote(tenant_id, task_id, **kwargs):
        # the stop's first read comes from just before the worker's TaskStarted landed
        if stale:
            return load(tenant_id, task_id, **kwargs)
        stale.append(True)
        aggregate = TaskAggregate(tenant_id, task_id)
        for event in load_stream(aggregate.stream.id)[:-1]:
            aggregate.apply(event)
        return aggregate

    monkeypatch.setattr(TaskAggregate, "load", read_before_the_worker_wrote)
    response = api.as_(funded).post(f"/api/v1/tasks/{task['id']}/stop/")
    assert response.status_code == 202, response.json()
    assert response.json()["state"] == "running"  # its worker stops it within a step
    types = Event.objects.filter(stream_id=task["id"]).order_by("version").values_list(
        "type", flat=True)
    assert list(types)[-2:] == ["TaskStarted", "TaskStopRequested"]


def test_restart_is_only_for_ended_tasks(api, funded, payload):
    task = create(api, funded, payload)
    response = api.as_(funded).post(f"/api/v1/tasks/{task['id']}/restart/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_not_restartable"


def test_versions_compare_and_lineage(api, funded, payload):
    first = create(api, funded, payload)
    second = api.as_(funded).post(f"/api/v1/tasks/{first['id']}/versions/",
                                  {"learning_rate": 0.01, "epochs": 5}, format="json")
    assert second.status_code == 201, second.content
    second = second.json()
    assert (second["version"], second["job"], second["epochs"]) == ("V002", first["id"], 5)
    versions = api.as_(funded).get(f"/api/v1/tasks/{second['id']}/versions/").json()
    assert [v["version"] for v in versions["results"]] == ["V001", "V002"]
    compared = api.as_(funded).get(
        f"/api/v1/tasks/{first['id']}/compare/?with={second['id']}").json()
    assert compared["config"] == {"epochs": {"a": 3, "b": 5},
                                  "learning_rate": {"a": 0.003, "b": 0.01}}
    assert api.as_(funded).get(f"/api/v1/tasks/{first['id']}/compare/?with=x"
                               ).status_code == 400
    lineage = api.as_(funded).get(f"/api/v1/tasks/{first['id']}/lineage/").json()
    kinds = [n["kind"] for n in lineage["nodes"]]
    assert kinds == ["dataset", "config", "training"]
    assert {"from": payload["train_dataset"], "to": f"config:{first['id']}"} in lineage["edges"]


def test_a_template_creates_tasks_with_its_parameters(api, funded, payload):
    first = create(api, funded, {**payload, "epochs": 7})
    template = api.as_(funded).post(f"/api/v1/tasks/{first['id']}/template/",
                                    {"name": "digits recipe"}, format="json")
    assert template.status_code == 201
    template = template.json()
    assert template["parameters"]["epochs"] == 7 and "project" not in template["parameters"]
    listed = api.as_(funded).get("/api/v1/task-templates/").json()["results"]
    assert [t["name"] for t in listed] == ["digits recipe"]
    made = create(api, funded, {"template": template["id"], "project": payload["project"],
                                "name": "from template"})
    assert (made["epochs"], made["name"], made["version"]) == (7, "from template", "V001")


def leased(task_id: str, last_seen, holder: str = "node-1:attempt-1") -> None:
    """The attempt's lease (core.lifecycle), last renewed at `last_seen`."""
    WorkLease.objects.update_or_create(key=lease_key(task_id), defaults={
        "holder": holder, "last_seen_at": last_seen})


def sweep_tasks() -> list[str]:
    """The lease sweep of the task kind, with TASK_LEASE_TIMEOUT_S; the ids it found lost."""
    lost = lifecycle.find_lost(KIND)
    if lost:
        KIND.interrupt(lost, False)
    return [str(item.work.work_id) for item in lost]


def test_a_lost_worker_is_interrupted_billed_to_its_heartbeat_and_retried(api, funded,
                                                                          payload):
    task = create(api, funded, payload)
    meter_id = claim(task["id"], 1, "node-1").meter_id
    last_seen = timezone.now() - timedelta(minutes=10)
    leased(task["id"], last_seen)

    lost = sweep_tasks()

    assert lost == [task["id"]]
    body = api.as_(funded).get(f"/api/v1/tasks/{task['id']}/").json()
    assert (body["state"], body["attempt"]) == ("queued", 2)
    types = list(Event.objects.filter(stream_id=task["id"]).order_by("version")
                 .values_list("type", flat=True))
    assert types[-2:] == ["TaskInterrupted", "TaskQueued"]
    first = Meter.objects.for_tenant(funded.tenant_id).get(id=meter_id)
    assert (first.state, first.stop_reason, first.stopped_at) == ("stopped", "interrupted",
                                                                  last_seen)
    assert Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=task["id"], state="running").count() == 1
    assert not WorkLease.objects.filter(key=lease_key(task["id"])).exists()  # released
    assert claim(task["id"], 1, "late-duplicate") is None  # the old attempt cannot come back


def test_a_task_without_retries_left_stays_interrupted(api, funded, payload, settings):
    settings.TASK_MAX_ATTEMPTS = 1
    task = create(api, funded, payload)
    claim(task["id"], 1, "node-1")
    leased(task["id"], timezone.now() - timedelta(minutes=10))
    sweep_tasks()
    body = api.as_(funded).get(f"/api/v1/tasks/{task['id']}/").json()
    assert body["state"] == "interrupted" and "no retries left" in body["failure"]["message"]
    assert wallet.view(funded.tenant_id).frozen == 0


def test_a_long_running_task_with_a_fresh_lease_is_left_alone(api, funded, payload):
    task = create(api, funded, payload)
    claim(task["id"], 1, "node-1")
    Task.objects.unscoped().filter(id=task["id"]).update(
        started_at=timezone.now() - timedelta(hours=3))
    leased(task["id"], timezone.now())
    assert sweep_tasks() == []
    assert api.as_(funded).get(f"/api/v1/tasks/{task['id']}/").json()["state"] == "running"


def test_a_worker_that_died_before_its_first_beat_is_lost_by_its_start(api, funded, payload):
    task = create(api, funded, payload)
    claim(task["id"], 1, "node-1")
    Task.objects.unscoped().filter(id=task["id"]).update(
        started_at=timezone.now() - timedelta(hours=3))
    assert sweep_tasks() == [task["id"]]  # no lease at all, started long ago


def test_an_attempt_given_up_for_lost_notices_it_is_superseded(api, funded, payload):
    from tasks.runner import _stop_look

    task = create(api, funded, payload)
    claimed = claim(task["id"], 1, "node-1")
    with lifecycle.hold(lease_key(task["id"]), take=True, every_s=3600,
                        look=lambda: _stop_look(claimed.task, 1), look_every_s=0) as lease:
        lease.look()
        assert not lease.is_set()
        WorkLease.objects.filter(key=lease_key(task["id"])).update(
            last_seen_at=timezone.now() - timedelta(minutes=10))
        sweep_tasks()  # attempt 2 is queued
        lease.look()
        assert lease.superseded and lease.is_set()
        assert not lease.beat()  # the sweep released its lease: it learns that way too


def test_a_superseded_attempts_writes_append_nothing(api, funded, payload):
    from tasks.events import TaskProgressed, TaskSucceeded

    task = create(api, funded, payload)
    claimed = claim(task["id"], 1, "node-1")
    progress = TaskProgressed(progress=0.5, epoch=1, step=1, eta_s=1.0, elapsed_s=1.0,
                              loss=0.1, lr=0.01, samples_per_s=1.0)
    assert claimed.report(progress)  # while it owns the task
    leased(task["id"], timezone.now() - timedelta(minutes=10))
    sweep_tasks()  # given up for lost: attempt 2 is queued
    before = [(e.version, e.type) for e in load_stream(task["id"])]

    assert not claimed.report(progress)
    assert not claimed.finish(TaskSucceeded(
        stop_reason=None, best_metric=0.9, elapsed_s=1.0, model_id="m", artifact_key="k",
        labels=[], metrics={}, input_size=[], warnings=[]), "completed")

    assert [(e.version, e.type) for e in load_stream(task["id"])] == before
    assert Task.objects.unscoped().get(id=task["id"]).state == "queued"
    assert Meter.objects.for_tenant(funded.tenant_id).filter(
        resource_id=task["id"], state="running").count() == 1  # attempt 2's meter runs on
