"""Tasks end to end on the in-process worker: train, watch, stop, target, funds, restart."""

import base64
import io
import zipfile

import pytest

from billing import api as billing
from billing import wallet
from billing.models import Meter
from eventlog.models import Event
from tasks.models import Task

from .conftest import digits_zip, task_payload, upload_digits, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def digit_png() -> bytes:
    """One image of the digits dataset, as a client would send it."""
    with zipfile.ZipFile(io.BytesIO(digits_zip(per_label=1))) as archive:
        return archive.read(sorted(archive.namelist())[0])


def get_task(api, account, task_id):
    return api.as_(account).get(f"/api/v1/tasks/{task_id}/").json()


def finished(api, account, task_id):
    def done():
        body = get_task(api, account, task_id)
        return body if body["state"] in ("succeeded", "failed", "stopped") else None
    return wait_for(done, timeout=120, what=f"task {task_id} to finish")


def test_a_task_trains_reports_live_and_settles_its_bill(api, funded, project_of_a, cpu_spec,
                                                        worker):
    dataset = upload_digits(api, funded, project_of_a["id"])
    created = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec), format="json")
    assert created.status_code == 201, created.content
    task = created.json()
    assert (task["state"], task["version"], task["algorithm"]) == ("queued", "V001",
                                                                  "small_cnn")
    assert wallet.view(funded.tenant_id).frozen == 2 * 3600

    body = finished(api, funded, task["id"])

    assert body["state"] == "succeeded" and body["stop_reason"] is None, body
    assert body["progress"] == 1.0 and body["epoch"] == 3 and body["best_metric"] > 0
    types = list(Event.objects.filter(stream_id=task["id"]).order_by("version")
                 .values_list("type", flat=True))
    assert types[:3] == ["TaskCreated", "TaskQueued", "TaskStarted"]
    assert types.count("TaskEpochCompleted") == 3 and "TaskProgressed" in types
    assert types[-1] == "TaskSucceeded"
    series = api.as_(funded).get(f"/api/v1/tasks/{task['id']}/metrics/").json()["series"]
    assert [p["epoch"] for p in series["loss"]] == [1, 2, 3] and len(series["accuracy"]) == 3
    model = api.as_(funded).get(f"/api/v1/models/{body['model']}/").json()
    assert model["labels"] == ["digit-0", "digit-1", "digit-7"] and model["version"] == "V001"
    meter = Meter.objects.for_tenant(funded.tenant_id).get(resource_id=task["id"])
    assert meter.state == "stopped" and meter.frozen == 0
    assert meter.charged == meter.settled_seconds  # 3,600 an hour: a unit a second
    money = wallet.view(funded.tenant_id)
    assert (money.frozen, money.balance) == (0, 100_000 - meter.charged)
    logs = api.as_(funded).get(f"/api/v1/tasks/{task['id']}/logs/?q=ATTEMPT").json()
    assert logs["results"][0]["message"].startswith("attempt 1 of task")
    assert logs["results"][0]["node"] == body["node"]


def test_progress_events_are_throttled(api, funded, project_of_a, cpu_spec, worker, settings):
    settings.TASK_PROGRESS_INTERVAL_S = 3600.0
    dataset = upload_digits(api, funded, project_of_a["id"])
    task = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec, epochs=2), format="json").json()
    finished(api, funded, task["id"])
    progressed = Event.objects.filter(stream_id=task["id"], type="TaskProgressed").count()
    assert progressed == 1  # the first step reports; the rest fall within the hour


def test_a_short_wallet_is_402_and_creates_nothing(api, tenant_a, project_of_a, cpu_spec,
                                                   worker):
    dataset = upload_digits(api, tenant_a, project_of_a["id"])
    wallet.adjust(tenant_a.tenant_id, 7_199, "almost enough", "staff:test")
    response = api.as_(tenant_a).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec), format="json")
    assert response.status_code == 402
    assert "short by 0.01 USD" in response.json()["error"]["message"]
    assert not Task.objects.for_tenant(tenant_a.tenant_id).exists()
    assert not Event.objects.filter(tenant_id=tenant_a.tenant_id, stream_type="task").exists()
    assert wallet.view(tenant_a.tenant_id).available == 7_199


def test_stop_answers_within_a_step_and_settles(api, funded, project_of_a, cpu_spec, worker,
                                                settings):
    settings.TASK_STOP_POLL_S = 0.0  # the worker looks at every step: "a step" is then exact
    dataset = upload_digits(api, funded, project_of_a["id"])
    task = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec, epochs=200), format="json").json()
    wait_for(lambda: get_task(api, funded, task["id"])["step"] > 0, what="training steps")

    stopped = api.as_(funded).post(f"/api/v1/tasks/{task['id']}/stop/")
    assert stopped.status_code == 202

    body = finished(api, funded, task["id"])
    assert (body["state"], body["stop_reason"]) == ("stopped", "user")
    # Every step reports (the worker fixture turns the throttle off), so the log shows how
    # many steps ran after the request: at most the one in flight when it came in.
    events = list(Event.objects.filter(stream_id=task["id"]).order_by("version"))
    requested = next(i for i, e in enumerate(events) if e.type == "TaskStopRequested")
    ended = next(i for i, e in enumerate(events) if e.type == "TaskStopped")
    steps_after = {(e.data["epoch"], e.data["step"]) for e in events[requested:ended]
                   if e.type == "TaskProgressed"}
    assert len(steps_after) <= 1, steps_after
    assert wallet.view(funded.tenant_id).frozen == 0
    again = api.as_(funded).post(f"/api/v1/tasks/{task['id']}/stop/")
    assert again.status_code == 409


def test_reaching_the_target_succeeds_early(api, funded, project_of_a, cpu_spec, worker):
    dataset = upload_digits(api, funded, project_of_a["id"])
    task = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec, epochs=50, target_metric=0.01),
        format="json").json()
    body = finished(api, funded, task["id"])
    assert (body["state"], body["stop_reason"], body["epoch"]) == (
        "succeeded", "target_reached", 1)
    assert body["model"] is not None


def test_out_of_funds_stops_the_task_and_a_top_up_restarts_it_from_its_checkpoint(
        api, tenant_a, project_of_a, cpu_spec, worker, settings):
    settings.BILLING_LEASE_TIMEOUT_S = 10 * 3600  # the jump in time below is not a vanishing
    dataset = upload_digits(api, tenant_a, project_of_a["id"])
    wallet.adjust(tenant_a.tenant_id, 7_300, "enough to start", "staff:test")
    task = api.as_(tenant_a).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec, epochs=400), format="json").json()
    wait_for(lambda: get_task(api, tenant_a, task["id"])["epoch"] >= 1, what="an epoch")
    from datetime import timedelta

    from django.utils import timezone

    # Two hours on, the freeze cannot be topped up from 100 units: billing stops the task.
    billing.settle_running(at=timezone.now() + timedelta(hours=2),
                           tenant_ids=[tenant_a.tenant_id])
    body = finished(api, tenant_a, task["id"])
    assert (body["state"], body["stop_reason"]) == ("stopped", "insufficient_funds")
    epochs_before = body["epoch"]
    events = Event.objects.filter(stream_id=task["id"], type="TaskStopped")
    assert events.get().data["stop_reason"] == "insufficient_funds"

    refused = api.as_(tenant_a).post(f"/api/v1/tasks/{task['id']}/restart/")
    assert refused.status_code == 402
    wallet.adjust(tenant_a.tenant_id, 50_000, "top-up", "staff:test")
    restarted = api.as_(tenant_a).post(f"/api/v1/tasks/{task['id']}/restart/")
    assert restarted.status_code == 202, restarted.content
    wait_for(lambda: get_task(api, tenant_a, task["id"])["epoch"] > epochs_before,
             what="training to continue past the checkpoint")
    api.as_(tenant_a).post(f"/api/v1/tasks/{task['id']}/stop/")
    body = finished(api, tenant_a, task["id"])
    assert body["attempt"] == 2 and body["epoch"] > epochs_before
    assert wallet.view(tenant_a.tenant_id).frozen == 0


def test_the_maximum_duration_stops_the_task_with_its_best_model(api, funded, project_of_a,
                                                                 cpu_spec, worker, settings):
    """Through the command (the API's floor is 60 s): a 2-second budget on a long run."""
    from core.tenancy import TenantAccess
    from tasks import commands

    settings.TASK_LOGS_PERSIST = True
    dataset = upload_digits(api, funded, project_of_a["id"])
    values = task_payload(project_of_a["id"], dataset["id"], cpu_spec, epochs=400,
                          max_duration_s=2)
    access = TenantAccess(tenant_id=funded.tenant_id, user_id=funded.user_id, role="owner")
    task = commands.create_task(access, values)
    body = finished(api, funded, task.id)
    assert (body["state"], body["stop_reason"]) == ("stopped", "max_duration")
    assert body["epoch"] < 400 and wallet.view(funded.tenant_id).frozen == 0
    # What the user came for: a model (the best finished epoch's, or, when the budget ended
    # inside the first epoch as it may on a loaded machine, the partial one of the weights so
    # far), listed with the task's versions and served by the model detail.
    assert body["model"] is not None, body
    versions = api.as_(funded).get(f"/api/v1/tasks/{task.id}/versions/").json()["results"]
    assert [(v["id"], v["model"]) for v in versions] == [(str(task.id), body["model"])]
    model = api.as_(funded).get(f"/api/v1/models/{body['model']}/")
    assert model.status_code == 200, model.content
    model = model.json()
    assert (model["task"], model["version"]) == (str(task.id), "V001")
    assert model["labels"] == ["digit-0", "digit-1", "digit-7"]
    series = api.as_(funded).get(f"/api/v1/tasks/{task.id}/metrics/").json()["series"]
    if body["epoch"] >= 1:
        best = max(series["accuracy"], key=lambda point: point["value"])
        assert model["metrics"]["accuracy"] == pytest.approx(best["value"])
        assert body["best_metric"] == pytest.approx(best["value"])
        assert "partial" not in model["metrics"]
    else:
        assert model["metrics"]["partial"] is True and "accuracy" not in series, model
    # Usable: published, it answers a prediction with one of its labels.
    service = api.as_(funded).post("/api/v1/services/", {
        "model": body["model"], "name": "digits", "spec": str(cpu_spec.id)}, format="json")
    assert service.status_code == 201, service.content
    path = f"/api/v1/services/{service.json()['id']}/"
    try:
        wait_for(lambda: api.as_(funded).get(path).json()["state"] == "running",
                 what="the service to run")
        answer = api.as_(funded).post(f"{path}predict/", {
            "image": base64.b64encode(digit_png()).decode(), "top_k": 1}, format="json")
        assert answer.status_code == 200, answer.content
        assert answer.json()["predictions"][0]["label"] in model["labels"]
    finally:  # an instance holds a worker thread until its service stops
        api.as_(funded).post(f"{path}stop/")
        wait_for(lambda: api.as_(funded).get(path).json()["state"] in ("stopped", "failed"),
                 what="the service to stop")
    from django.core.files.storage import default_storage

    from tasklogs.api import persist_key

    key = persist_key(funded.tenant_id, task.id)  # written just after the final event
    wait_for(lambda: default_storage.exists(key), what="the task's logs in storage")
