"""Recovery after a crash, with really killed processes (issue 16 item 8).

A deployment holds a running service, a queued task, a dataset being validated and a queued
evaluation when its processes are killed with SIGKILL:

1. `make run`'s shape: the one `manage.py serve` process (SQLite, in-process worker, whose
   broker keeps its messages in memory and loses them all). It starts again on the same data.
2. The production shape: PostgreSQL, RabbitMQ, a separate dramatiq worker and the scheduler;
   the worker and the scheduler are killed and start again.

Afterwards every piece of work is found again through the public API: the task trains to its
end, the validation finishes, the evaluation reports, and the service answers predictions
again (its dead instance found by its heartbeat and started again); each freeze was made
once. The worker runs one thread before the kill, so that the service's instance holds it and
the rest stays queued.
"""

import io
import secrets
import sys
import uuid
from collections import Counter
from urllib.parse import urlparse, urlunparse

import numpy as np
import pytest
from PIL import Image

from core.services import POSTGRES_URL, RABBITMQ_URL, REDIS_URL
from tests.conftest import require_service
from tests.tasks.conftest import digits_zip

from .servers import MANAGE, Client, Processes, clean_env, manage, wait_for
from .test_training_flow import (
    FUNDS,
    Deployment,
    Tenant,
    create_task,
    funded_tenant,
    start_server,
)

FAST = {  # small timeouts, so that the whole recovery takes seconds
    "TASK_DEVICE": "cpu", "TASK_AUTO_EVALUATE": "false", "TASK_PROGRESS_INTERVAL_S": "0",
    "TASK_HEARTBEAT_S": "0.5", "TASK_LEASE_TIMEOUT_S": "5", "TASK_LEASE_CHECK_INTERVAL_S": "1",
    "RECOVERY_INTERVAL_S": "1", "RECOVERY_REQUEUE_AFTER_S": "3", "WORK_HEARTBEAT_S": "0.5",
    "WORK_LEASE_TIMEOUT_S": "3", "SERVING_INSTANCE_HEARTBEAT_S": "0.5",
    "SERVING_INSTANCE_TIMEOUT_S": "3", "SERVING_INSTANCE_CHECK_INTERVAL_S": "0.5",
    "EVENTS_POLL_INTERVAL_S": "0.5", "LOG_LEVEL": "INFO"}
WORKER_ARGS = ["-m", "dramatiq", "config.worker", "--processes", "1", "--queues", "gpu", "cpu",
               "serving"]


def png() -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def predict(api: Client, service_id: str) -> tuple[int, object]:
    return api.call("POST", f"/api/v1/services/{service_id}/predict/",
                    files={"image": ("x.png", png(), "image/png")})


def state_of(api: Client, path: str, *states: str) -> dict | None:
    body = api.get(path)
    return body if body["state"] in states else None


def until(deployment: Deployment, api: Client, path: str, *states: str, timeout: float = 60
          ) -> dict:
    return wait_for(lambda: state_of(api, path, *states), timeout=timeout,
                    what=f"{path} to be {'/'.join(states)}", processes=deployment.processes)


def trained_model(deployment: Deployment, tenant: Tenant) -> str:
    task = create_task(tenant, epochs=1)
    done = until(deployment, tenant.api, f"/api/v1/tasks/{task['id']}/", "succeeded",
                 "failed", "stopped", timeout=90)
    assert done["state"] == "succeeded" and done["model"], done
    return done["model"]


def leave_work_in_flight(deployment: Deployment, tenant: Tenant) -> dict:
    """A running service (its instance holds the worker's only thread), then a task, a dataset
    upload and an evaluation that wait behind it."""
    api = tenant.api
    model = trained_model(deployment, tenant)
    service = api.ok("POST", "/api/v1/services/", {
        "model": model, "name": "digits", "spec": tenant.spec["id"],
        "billing_mode": "postpaid", "instances": 1}, status=201)
    until(deployment, api, f"/api/v1/services/{service['id']}/", "running")
    code, answer = predict(api, service["id"])
    assert code == 200 and answer["predictions"], answer
    task = create_task(tenant, epochs=1)
    dataset = api.ok("POST", "/api/v1/datasets/", status=201, data={
        "project": tenant.project, "name": "digits-2", "kind": "classification",
        "format": "folders"}, files={"file": ("d.zip", digits_zip(per_label=8), "application/zip")})
    evaluation = api.ok("POST", "/api/v1/evaluations/", {
        "model": model, "dataset": tenant.dataset, "spec": tenant.spec["id"]}, status=201)
    assert api.get(f"/api/v1/tasks/{task['id']}/")["state"] == "queued"
    assert api.get(f"/api/v1/datasets/{dataset['id']}/")["state"] == "uploaded"
    assert api.get(f"/api/v1/evaluations/{evaluation['id']}/")["state"] == "queued"
    return {"service": service["id"], "task": task["id"], "dataset": dataset["id"],
            "evaluation": evaluation["id"], "model": model}


# The validation had begun when the process died: its DatasetValidationStarted is in the log and
# its lease was renewed a moment before (the dead worker's). Written with the process down.
BEGIN_VALIDATION = """
from core import leases
from datasets.aggregates import DatasetAggregate
from datasets.commands import validation_key
from datasets.events import DatasetValidationStarted
from datasets.models import Dataset
row = Dataset.objects.unscoped().get(id="{id}")
DatasetAggregate.load(row.tenant_id, row.id).append(DatasetValidationStarted())
leases.claim(validation_key(row.id), "dead-worker:1", stale_after_s=60)
"""


def assert_everything_recovered(deployment: Deployment, tenant: Tenant, work: dict,
                                lost_reason: str) -> None:
    api = tenant.api
    task = until(deployment, api, f"/api/v1/tasks/{work['task']}/", "succeeded", "failed",
                 "stopped", "interrupted", timeout=90)
    assert (task["state"], task["attempt"]) == ("succeeded", 1), task
    dataset = until(deployment, api, f"/api/v1/datasets/{work['dataset']}/", "ready", "invalid")
    assert dataset["state"] == "ready" and dataset["image_count"] == 24, dataset
    evaluation = until(deployment, api, f"/api/v1/evaluations/{work['evaluation']}/",
                       "succeeded", "failed", "stopped", timeout=90)
    assert evaluation["state"] == "succeeded", evaluation

    def answered() -> bool:
        code, body = predict(api, work["service"])
        assert code in (200, 503), body  # 503 at once while no instance is alive, no 30 s wait
        return code == 200

    wait_for(answered, timeout=30, what="the service to answer again", every=0.5,
             processes=deployment.processes)
    service = api.get(f"/api/v1/services/{work['service']}/")
    assert service["state"] == "running", service

    events = events_of(api)
    service_events = [(e["type"], e["data"].get("reason")) for e in events
                      if e["stream_id"] == work["service"]]
    exits = [reason for kind, reason in service_events if kind == "ServiceInstanceExited"]
    assert exits == [lost_reason], service_events
    assert service_events.count(("ServiceInstanceStarted", None)) == 2, service_events
    task_types = [e["type"] for e in events if e["stream_id"] == work["task"]]
    assert task_types.count("TaskStarted") == 1 and task_types.count("TaskQueued") == 1
    # One meter each: sending the work again started and froze nothing more; what is still
    # frozen is the running service's, and the balance is the funds less every charge.
    meters = api.get("/api/v1/billing/meters/")["results"]
    per_resource = Counter(m["resource_id"] for m in meters)
    assert per_resource[work["task"]] == per_resource[work["evaluation"]] == 1, meters
    assert per_resource[work["service"]] == 1, meters
    for meter in meters:
        if meter["resource_id"] in (work["task"], work["evaluation"]):
            assert (meter["state"], meter["stop_reason"], meter["frozen"]) == (
                "stopped", "completed", 0), meter
    wallet = api.get("/api/v1/billing/wallet/")
    assert wallet["frozen"] == sum(m["frozen"] for m in meters), (wallet, meters)
    assert wallet["balance"] == FUNDS - sum(m["charged"] for m in meters), (wallet, meters)


def events_of(api: Client) -> list[dict]:
    events, after = [], 0
    while page := api.get(f"/api/v1/events/?after={after}&limit=1000")["results"]:
        events += page
        after = page[-1]["position"]
    return events


def test_make_run_killed_finds_every_piece_of_work_again(tmp_path):
    env = clean_env(DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", WORKER_THREADS="1", **FAST)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_specs")
    processes = Processes(tmp_path)
    try:
        deployment = Deployment(start_server(env, processes), env, processes)
        tenant = funded_tenant(deployment)
        work = leave_work_in_flight(deployment, tenant)
        processes.all[-1].kill_group()
        manage(env, "shell", "-c", BEGIN_VALIDATION.format(id=work["dataset"]))

        (tmp_path / "after").mkdir()
        after = Processes(tmp_path / "after")  # the killed process is no failure of these
        try:
            deployment = Deployment(start_server({**env, "WORKER_THREADS": "4"}, after), env,
                                    after)
            tenant.api = Client(deployment.base, tenant.api.token, after)
            # the process restarted: the instance is started again, taking none of its restarts
            assert_everything_recovered(deployment, tenant, work, "process_restarted")
        finally:
            after.stop_all()
    finally:
        processes.stop_all()


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.mark.slow
def test_production_shape_killed_finds_every_piece_of_work_again(request, tmp_path):
    import psycopg

    postgres_url = require_service(request, "PostgreSQL", POSTGRES_URL)
    redis_url = require_service(request, "Redis", REDIS_URL)
    rabbitmq_url = require_service(request, "RabbitMQ", RABBITMQ_URL)
    name = f"automl_e2e_{uuid.uuid4().hex[:12]}"
    admin_url = _with_database(postgres_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = clean_env(
        DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost", PUBLIC_URL="http://127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=_with_database(postgres_url, name), REDIS_URL=redis_url,
        DRAMATIQ_BROKER_URL=rabbitmq_url, INPROCESS_WORKER="false",
        DATA_DIR=str(tmp_path / "data"), SESSION_COOKIE_SECURE="false",
        WHITENOISE_USE_FINDERS="true", ANON_THROTTLE_RATE="10000/min",
        API_THROTTLE_RATE="100000/min", **FAST)
    processes = Processes(tmp_path)
    try:
        manage(env, "migrate", "--noinput", "-v0", timeout=300)
        manage(env, "seed_specs")
        worker = processes.start("worker-1", [sys.executable, *WORKER_ARGS, "--threads", "1"],
                                 env)
        scheduler = processes.start("scheduler-1", [*MANAGE, "run_scheduler"], env)
        deployment = Deployment(start_server(env, processes), env, processes, worker)
        tenant = funded_tenant(deployment)
        work = leave_work_in_flight(deployment, tenant)
        worker.kill_group()
        scheduler.kill_group()
        manage(env, "shell", "-c", BEGIN_VALIDATION.format(id=work["dataset"]))

        processes.start("worker-2", [sys.executable, *WORKER_ARGS, "--threads", "4"], env)
        processes.start("scheduler-2", [*MANAGE, "run_scheduler"], env)
        # the worker died: its instance is found by its silent heartbeat
        assert_everything_recovered(deployment, tenant, work, "lost")
    finally:
        processes.stop_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
