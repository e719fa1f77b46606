"""A training task end to end through real processes, watched live over the websocket.

1. The embedded defaults (`make run`): one `manage.py serve` process with SQLite, the in-memory
   channel layer and the in-process worker.
2. The production shape (CI): a fresh PostgreSQL database, Redis as the channel layer, RabbitMQ
   as the broker, `manage.py serve` for the API only, a separate `dramatiq config.worker`
   process and `manage.py run_scheduler`.
3. The same deployment with its worker killed (SIGKILL, whole process group) mid-training: the
   lease check interrupts the attempt, bills it up to its last heartbeat and queues attempt 2,
   which a new worker continues from the checkpoint.
"""

import itertools
import logging
import math
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse, urlunparse

import pytest

from core.services import POSTGRES_URL, RABBITMQ_URL, REDIS_URL
from tests.conftest import require_service
from tests.tasks.conftest import digits_zip

from .servers import (
    MANAGE,
    Client,
    EventReader,
    Process,
    Processes,
    clean_env,
    free_port,
    manage,
    wait_for,
    wait_healthy,
)

FUNDS = 10_000  # minor units credited to each tenant
FINAL = {"TaskSucceeded", "TaskStopped", "TaskFailed"}
WORKER_ARGS = ["-m", "dramatiq", "config.worker", "--processes", "1", "--threads", "2",
               "--queues", "gpu", "cpu"]
QUEUES = ("gpu", "cpu")


@dataclass
class Deployment:
    base: str
    env: dict[str, str]
    processes: Processes
    worker: Process | None = None  # the separate worker process, when there is one

    def start_worker(self) -> Process:
        number = sum(p.name.startswith("worker") for p in self.processes.all) + 1
        self.worker = self.processes.start(f"worker-{number}", [sys.executable, *WORKER_ARGS],
                                           self.env)
        return self.worker


def start_server(env: dict[str, str], processes: Processes) -> str:
    port = free_port()
    processes.start("serve", [*MANAGE, "serve", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(Client(base), processes)
    return base


# --- the two deployments ----------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path):
    """`make run`'s shape: SQLite in DATA_DIR, in-memory layer, in-process worker and scheduler."""
    env = clean_env(DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", LOG_LEVEL="INFO", TASK_DEVICE="cpu")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_specs")
    processes = Processes(tmp_path)
    try:
        yield Deployment(start_server(env, processes), env, processes)
    finally:
        processes.stop_all()


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def _delete_queues(amqp_url: str) -> None:
    """Drop the platform's queues (and dramatiq's delay and dead-letter queues) on RabbitMQ's
    shared default vhost, so no message of another run reaches this one, nor ours the next."""
    import pika
    from dramatiq.common import dq_name, xq_name

    logging.getLogger("pika").setLevel(logging.WARNING)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in QUEUES:
            for name in (queue, dq_name(queue), xq_name(queue)):
                channel.queue_delete(name)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def services(request, tmp_path_factory):
    """The production shape on this machine's PostgreSQL, Redis and RabbitMQ (required in CI):
    API-only `serve`, a separate dramatiq worker and the scheduler, on a fresh database."""
    import psycopg

    postgres_url = require_service(request, "PostgreSQL", POSTGRES_URL)
    redis_url = require_service(request, "Redis", REDIS_URL)
    rabbitmq_url = require_service(request, "RabbitMQ", RABBITMQ_URL)
    tmp = tmp_path_factory.mktemp("services")
    name = f"automl_e2e_{uuid.uuid4().hex[:12]}"
    admin_url = _with_database(postgres_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    _delete_queues(rabbitmq_url)
    env = clean_env(
        DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY=uuid.uuid4().hex * 2,
        ALLOWED_HOSTS="127.0.0.1,localhost", PUBLIC_URL="http://127.0.0.1",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on this machine
        DATABASE_URL=_with_database(postgres_url, name), REDIS_URL=redis_url,
        DRAMATIQ_BROKER_URL=rabbitmq_url, INPROCESS_WORKER="false", DATA_DIR=str(tmp / "data"),
        LOG_LEVEL="INFO", SESSION_COOKIE_SECURE="false", WHITENOISE_USE_FINDERS="true",
        ANON_THROTTLE_RATE="10000/min", API_THROTTLE_RATE="100000/min", TASK_DEVICE="cpu",
        TASK_LEASE_CHECK_INTERVAL_S="1", TASK_LEASE_TIMEOUT_S="5", TASK_HEARTBEAT_S="0.5",
        TASK_STOP_POLL_S="0.1", TASK_PROGRESS_INTERVAL_S="0", EVENTS_POLL_INTERVAL_S="0.5")
    processes = Processes(tmp)
    try:
        manage(env, "migrate", "--noinput", "-v0", timeout=300)
        manage(env, "seed_specs")
        deployment = Deployment("", env, processes)
        deployment.start_worker()
        processes.start("scheduler", [*MANAGE, "run_scheduler"], env)
        deployment.base = start_server(env, processes)
        yield deployment
    finally:
        processes.stop_all()
        try:
            _delete_queues(rabbitmq_url)
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def logs_on_failure(request):
    """A failed test shows the tail of each process's log (in its teardown output)."""
    deployments = [request.getfixturevalue(name) for name in ("embedded", "services")
                   if name in request.fixturenames]
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for deployment in deployments:
            print(deployment.processes.tails(6000))


# --- steps shared by the tests ----------------------------------------------------------------


@dataclass
class Tenant:
    api: Client
    id: str
    project: str
    dataset: str
    spec: dict


def funded_tenant(deployment: Deployment, **zip_options) -> Tenant:
    """Sign up, credit FUNDS with billing_adjust, make a project and a ready digits dataset."""
    api = Client(deployment.base, processes=deployment.processes)
    account = api.ok("POST", "/api/v1/auth/signup/", {
        "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "a fine long password",
        "tenant": "E2E"}, status=201)
    api, tenant_id = api.as_(account["token"]), account["tenant"]["id"]
    assert api.get("/api/v1/billing/wallet/")["balance"] == 0
    manage(deployment.env, "billing_adjust", "--tenant", tenant_id, "--amount", str(FUNDS),
           "--reason", "e2e funding", "--actor", "e2e@example.com")
    wallet = api.get("/api/v1/billing/wallet/")
    assert (wallet["balance"], wallet["frozen"], wallet["available"]) == (FUNDS, 0, FUNDS)

    specs = [s for s in api.get("/api/v1/billing/specs/")["results"] if s["kind"] == "cpu"]
    assert specs, "no cpu spec after seed_specs"
    spec = min(specs, key=lambda s: s["price_per_hour"])
    project = api.ok("POST", "/api/v1/projects/", {"name": "Digits"}, status=201)
    created = api.ok("POST", "/api/v1/datasets/", status=201, data={
        "project": project["id"], "name": "digits", "kind": "classification",
        "format": "folders"}, files={"file": ("digits.zip", digits_zip(**zip_options),
                                              "application/zip")})

    def validated() -> dict | None:
        body = api.get(f"/api/v1/datasets/{created['id']}/")
        return body if body["state"] in ("ready", "invalid") else None

    dataset = wait_for(validated, timeout=60, what="dataset validation",
                       processes=deployment.processes)
    assert dataset["state"] == "ready", dataset
    return Tenant(api, tenant_id, project["id"], dataset["id"], spec)


def create_task(tenant: Tenant, epochs: int) -> dict:
    return tenant.api.ok("POST", "/api/v1/tasks/", {
        "project": tenant.project, "name": "digits-cnn", "scenario": "classification",
        "model": "small_cnn", "train_dataset": tenant.dataset, "epochs": epochs,
        "learning_rate": 0.003, "batch_size": 8, "warmup_epochs": 0,
        "billing_mode": "postpaid", "spec": tenant.spec["id"]}, status=201)


def of_task(task_id: str, *types: str, **data) -> Callable[[dict], bool]:
    """A predicate for the task's events of `types` whose data has the `data` items."""
    def matches(event: dict) -> bool:
        return (event["stream_id"] == task_id and event["type"] in types
                and all(event["data"].get(k) == v for k, v in data.items()))
    return matches


def assert_strictly_increasing(stream: EventReader) -> None:
    positions = [e["position"] for e in stream.events]
    assert all(a < b for a, b in itertools.pairwise(positions)), positions


def stopped_meters(deployment: Deployment, tenant: Tenant, task_id: str, count: int
                   ) -> list[dict]:
    """The task's meters, oldest first, once `count` of them are stopped."""
    def all_stopped() -> list[dict] | None:
        meters = tenant.api.get(f"/api/v1/billing/meters/?resource_id={task_id}")["results"]
        done = [m for m in meters if m["state"] == "stopped"]
        return sorted(meters, key=lambda m: m["started_at"]) if len(done) == count else None

    return wait_for(all_stopped, timeout=30, what=f"{count} stopped meter(s) of the task",
                    processes=deployment.processes)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_charged_by_the_rule(meter: dict) -> None:
    """Whole seconds from start to stop (ceil), charged as ceil(s * price / 3600)."""
    seconds = (moment(meter["stopped_at"]) - moment(meter["started_at"])).total_seconds()
    assert meter["settled_seconds"] == math.ceil(seconds), meter
    assert meter["charged"] == math.ceil(meter["settled_seconds"] * meter["price_per_hour"]
                                         / 3600), meter
    assert meter["frozen"] == 0, meter


def train_three_epochs_and_settle(deployment: Deployment) -> None:
    """Sign up, fund, upload, watch a 3-epoch task live to its end, check its results and bill."""
    tenant = funded_tenant(deployment)
    api, processes = tenant.api, deployment.processes
    with api.websocket(after=api.head_position()) as stream:
        began = time.monotonic()
        task = create_task(tenant, epochs=3)
        assert task["state"] == "queued", task  # the task as created, whatever the worker does
        end = stream.until(of_task(task["id"], *FINAL), timeout=120,
                           what="the end of the task", processes=processes)
    assert end["type"] == "TaskSucceeded", end

    assert_strictly_increasing(stream)
    events = stream.of(task["id"])
    types = [e["type"] for e in events]
    assert types[:2] == ["TaskCreated", "TaskQueued"], types
    assert types.count("TaskStarted") == 1 and types[-1] == "TaskSucceeded", types
    started = types.index("TaskStarted")
    progressed = [i for i, t in enumerate(types) if t == "TaskProgressed"]
    epochs = [i for i, t in enumerate(types) if t == "TaskEpochCompleted"]
    assert progressed and started < progressed[0] < epochs[0], types
    assert [events[i]["data"]["epoch"] for i in epochs] == [1, 2, 3], types
    assert epochs[-1] < len(types) - 1
    # The start froze two hours of the spec's price in the same append as the meter.
    frozen = [e for e in stream.events if e["stream_id"] == tenant.id
              and e["type"] == "FundsFrozen"]
    assert [e["data"]["amount"] for e in frozen] == [2 * tenant.spec["price_per_hour"]], frozen

    body = api.get(f"/api/v1/tasks/{task['id']}/")
    assert (body["state"], body["stop_reason"], body["attempt"]) == ("succeeded", None, 1), body
    assert body["progress"] == 1.0 and body["epoch"] == 3 and body["model"], body
    model = api.get(f"/api/v1/models/{body['model']}/")
    assert model["task"] == task["id"] and model["labels"] == ["digit-0", "digit-1", "digit-7"]

    series = api.get(f"/api/v1/tasks/{task['id']}/metrics/")["series"]
    assert [p["epoch"] for p in series["loss"]] == [1, 2, 3], series

    logs = api.get(f"/api/v1/tasks/{task['id']}/logs/")["results"]
    assert logs, "the task has no log lines"
    assert {line["node"] for line in logs} == {body["node"]}, logs[:3]
    assert any(line["message"].startswith("attempt 1 of task") for line in logs), logs[:5]
    same_node = api.get(f"/api/v1/tasks/{task['id']}/logs/?node={body['node']}")["results"]
    assert [line["cursor"] for line in same_node] == [line["cursor"] for line in logs]
    assert api.get(f"/api/v1/tasks/{task['id']}/logs/?node=elsewhere:1")["results"] == []

    [meter] = stopped_meters(deployment, tenant, task["id"], 1)
    assert (meter["stop_reason"], meter["spec_id"]) == ("completed", tenant.spec["id"]), meter
    assert_charged_by_the_rule(meter)
    assert meter["charged"] >= 1 and meter["settled_seconds"] <= time.monotonic() - began + 1
    wallet = api.get("/api/v1/billing/wallet/")
    assert (wallet["frozen"], wallet["balance"], wallet["available"]) == (
        0, FUNDS - meter["charged"], FUNDS - meter["charged"]), (wallet, meter)


# --- the tests ----------------------------------------------------------------------------------


def test_embedded_defaults_train_live_and_bill(embedded):
    train_three_epochs_and_settle(embedded)


@pytest.mark.slow
def test_production_shape_trains_live_and_bills(services):
    assert services.worker is not None and services.worker.alive()
    train_three_epochs_and_settle(services)


@pytest.mark.slow
def test_a_killed_worker_is_interrupted_and_the_task_continues_from_its_checkpoint(services):
    deployment, processes = services, services.processes
    # 40 images a digit: about a dozen steps an epoch, so the kill lands well inside one.
    tenant = funded_tenant(deployment, per_label=40)
    api = tenant.api
    with api.websocket(after=api.head_position()) as stream:
        began = time.monotonic()
        task = create_task(tenant, epochs=40)
        task_id = task["id"]
        first = stream.until(of_task(task_id, "TaskEpochCompleted"), timeout=90,
                             what="the first completed epoch", processes=processes)
        # A step of the next epoch: the checkpoint of the epoch before it is written (it is
        # saved after TaskEpochCompleted is reported and before the next step).
        stream.until(lambda e: of_task(task_id, "TaskProgressed")(e)
                     and e["data"]["epoch"] > first["data"]["epoch"], timeout=60,
                     what="a step after the first checkpoint", processes=processes)
        [started_1] = stream.of(task_id, "TaskStarted")
        killed_at = datetime.now(UTC)
        deployment.worker.kill_group()
        deployment.start_worker()

        interrupted = stream.until(of_task(task_id, "TaskInterrupted"), timeout=60,
                                   what="the lease check to interrupt the attempt",
                                   processes=processes)
        requeued = stream.until(of_task(task_id, "TaskQueued", attempt=2), timeout=30,
                                what="attempt 2 queued", processes=processes)
        started_2 = stream.until(of_task(task_id, "TaskStarted", attempt=2), timeout=90,
                                 what="attempt 2 started on the new worker", processes=processes)
        resumed = stream.until(lambda e: of_task(task_id, "TaskEpochCompleted")(e)
                               and e["position"] > started_2["position"], timeout=90,
                               what="an epoch of attempt 2", processes=processes)
        code, stop = api.call("POST", f"/api/v1/tasks/{task_id}/stop/")
        assert code in (202, 409), stop  # 409: all 40 epochs were done already
        end = stream.until(of_task(task_id, *FINAL), timeout=60, what="the end of the task",
                           processes=processes)
        wall_s = time.monotonic() - began

    assert_strictly_increasing(stream)
    assert interrupted["data"]["attempt"] == 1
    assert "retrying from the last checkpoint" in interrupted["data"]["reason"]
    assert started_1["data"]["attempt"] == 1
    assert started_2["data"]["node"] != started_1["data"]["node"]
    assert interrupted["position"] < requeued["position"] < started_2["position"]
    epochs_1 = [e["data"]["epoch"] for e in stream.of(task_id, "TaskEpochCompleted")
                if e["position"] < interrupted["position"]]
    epochs_2 = [e["data"]["epoch"] for e in stream.of(task_id, "TaskEpochCompleted")
                if e["position"] > started_2["position"]]
    assert epochs_1 == list(range(1, len(epochs_1) + 1)), epochs_1
    # Continued from the checkpoint: the epochs go on after attempt 1's last one.
    assert resumed["data"]["epoch"] == epochs_1[-1] + 1, (epochs_1, epochs_2)
    assert epochs_2 == list(range(epochs_1[-1] + 1, epochs_1[-1] + 1 + len(epochs_2)))

    body = api.get(f"/api/v1/tasks/{task_id}/")
    assert body["attempt"] == 2, body
    if end["type"] == "TaskStopped":
        assert (body["state"], body["stop_reason"]) == ("stopped", "user"), body
    else:
        assert end["type"] == "TaskSucceeded" and body["state"] == "succeeded", (end, body)
    # A stop lands inside an epoch: the task's `epoch` is then the one in progress.
    assert body["epoch"] in (epochs_2[-1], epochs_2[-1] + 1), (body, epochs_2)
    series = api.get(f"/api/v1/tasks/{task_id}/metrics/")["series"]
    assert [p["epoch"] for p in series["loss"]] == epochs_1 + epochs_2, series["loss"]

    first_meter, second_meter = stopped_meters(deployment, tenant, task_id, 2)
    # Attempt 1 is billed up to its last heartbeat (every 0.5 s), not up to the interruption.
    assert first_meter["stop_reason"] == "interrupted", first_meter
    stopped_1 = moment(first_meter["stopped_at"])
    assert killed_at - timedelta(seconds=3) <= stopped_1 <= killed_at + timedelta(seconds=0.5), (
        first_meter, killed_at)
    assert stopped_1 < moment(interrupted["recorded_at"]) - timedelta(seconds=4)
    assert second_meter["stop_reason"] == ("user" if end["type"] == "TaskStopped"
                                           else "completed"), second_meter
    assert moment(second_meter["started_at"]) >= stopped_1  # no second counted twice
    for meter in (first_meter, second_meter):
        assert_charged_by_the_rule(meter)
    assert first_meter["settled_seconds"] + second_meter["settled_seconds"] <= wall_s
    charged = first_meter["charged"] + second_meter["charged"]
    wallet = api.get("/api/v1/billing/wallet/")
    assert (wallet["frozen"], wallet["balance"]) == (0, FUNDS - charged), wallet
