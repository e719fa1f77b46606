"""A reaction survives a kill between its trigger and itself (issue 17 item 5).

`make run`'s shape: a task succeeds while the server follows no policies (EVENTLOG_POLICIES
false, so the automatic evaluation waits in the log), the process is killed with SIGKILL, and
the server that starts again on the same data evaluates the model exactly once. Likewise a
service whose meter billing stopped (the wallet emptied) is stopped exactly once.
"""

import subprocess

import pytest

from .servers import MANAGE, ROOT, Client, Processes, clean_env, manage, wait_for
from .test_crash_recovery import FAST, events_of, trained_model, until
from .test_training_flow import FUNDS, Deployment, funded_tenant, start_server


def installed(tmp_path, **settings: str) -> dict[str, str]:
    env = clean_env(DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", **{**FAST, **settings})
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_specs")
    return env


def empty_wallet(env: dict[str, str], api: Client, tenant_id: str) -> None:
    """Debit everything available. Settlement runs every second here and may charge a cent
    between the read and the debit, which the debit then refuses: read again and retry."""
    for _ in range(10):
        available = api.get("/api/v1/billing/wallet/")["available"]
        if available <= 0:
            return
        done = subprocess.run(
            [*MANAGE, "billing_adjust", "--tenant", tenant_id, "--amount", str(-available),
             "--reason", "e2e: empty the wallet", "--actor", "e2e@example.com"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0:
            return
        if "short by" not in done.stderr:
            pytest.fail(f"billing_adjust failed:\n{done.stderr[-4000:]}", pytrace=False)
    pytest.fail("the wallet could not be emptied in 10 tries", pytrace=False)


def test_the_automatic_evaluation_after_a_kill_happens_once(tmp_path):
    env = installed(tmp_path, TASK_AUTO_EVALUATE="true")
    processes = Processes(tmp_path)
    try:
        held = {**env, "EVENTLOG_POLICIES": "false"}
        deployment = Deployment(start_server(held, processes), held, processes)
        tenant = funded_tenant(deployment)
        model = trained_model(deployment, tenant)
        assert [e["type"] for e in events_of(tenant.api)].count("TaskSucceeded") == 1
        assert tenant.api.get(f"/api/v1/evaluations/?model={model}")["results"] == []
        processes.all[-1].kill_group()

        (tmp_path / "after").mkdir()
        after = Processes(tmp_path / "after")  # the killed process is no failure of these
        try:
            deployment = Deployment(start_server(env, after), env, after)
            tenant.api = Client(deployment.base, tenant.api.token, after)
            found = wait_for(
                lambda: tenant.api.get(f"/api/v1/evaluations/?model={model}")["results"],
                timeout=30, what="the automatic evaluation", processes=after)
            evaluation = until(deployment, tenant.api, f"/api/v1/evaluations/{found[0]['id']}/",
                               "succeeded", "failed", timeout=60)
            assert evaluation["state"] == "succeeded" and evaluation["options"]["automatic"]
            again = [e for e in events_of(tenant.api) if e["type"] == "EvaluationCreated"]
            assert [e["data"]["model"] for e in again] == [model], again
        finally:
            after.stop_all()
    finally:
        processes.stop_all()


def test_a_forced_stop_after_a_kill_happens_once(tmp_path):
    env = installed(tmp_path, BILLING_SETTLE_INTERVAL_S="1")
    processes = Processes(tmp_path)
    try:
        held = {**env, "EVENTLOG_POLICIES": "false"}
        deployment = Deployment(start_server(held, processes), held, processes)
        tenant = funded_tenant(deployment)
        api = tenant.api
        # The dearest spec charges a cent every few seconds, and every charge must be frozen
        # again out of what is available: once the wallet is empty the next one stops it. (On
        # the cheapest spec a cent is charged every 5 minutes, so the stop waited on a race
        # between the first charge and the debit.)
        dearest = max(api.get("/api/v1/billing/specs/")["results"],
                      key=lambda s: s["price_per_hour"])
        assert 3 * dearest["price_per_hour"] < FUNDS, dearest  # two hours frozen, and a margin
        service = api.ok("POST", "/api/v1/services/", {
            "model": trained_model(deployment, tenant), "name": "digits",
            "spec": dearest["id"], "billing_mode": "postpaid", "instances": 1}, status=201)
        path = f"/api/v1/services/{service['id']}/"
        until(deployment, api, path, "running")
        empty_wallet(env, api, tenant.id)
        wait_for(lambda: [m for m in api.get(
            f"/api/v1/billing/meters/?resource_id={service['id']}")["results"]
            if m["stop_reason"] == "insufficient_funds"], timeout=30,
            what="billing to stop the service's meter", processes=processes)
        assert api.get(path)["state"] == "running"  # the reaction waits in the log
        processes.all[-1].kill_group()

        (tmp_path / "after").mkdir()
        after = Processes(tmp_path / "after")
        try:
            deployment = Deployment(start_server(env, after), env, after)
            tenant.api = api = Client(deployment.base, api.token, after)
            stopped = until(deployment, api, path, "stopped", "failed", timeout=60)
            assert stopped["stop_reason"] == "insufficient_funds", stopped
            requests = [e for e in events_of(api) if e["stream_id"] == service["id"]
                        and e["type"] == "ServiceStopRequested"]
            assert [e["data"]["reason"] for e in requests] == ["insufficient_funds"], requests
        finally:
            after.stop_all()
    finally:
        processes.stop_all()
