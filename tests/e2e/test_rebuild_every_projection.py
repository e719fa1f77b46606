"""Every registered projection is rebuilt from the log into the rows the live appends made.

One history through the public API touches every read model: a project, a validated dataset
and a corrected version of it, a task trained to its model and retrained as a second version,
a template, the models' automatic evaluations and a manual one, a service published, moved to
the second model and stopped, the wallet's money (a Stripe top-up against the local fake,
prepaid hours, the meters of all of the above). The rows of every registered projection are
then emptied and replayed (`manage.py rebuild_projections`) and must come back identical. A
projection registered later whose read models this history leaves empty fails here: extend the
history so that its rebuild is tested too.
"""

import pytest
from django.core.management import call_command

from billing import wallet
from eventlog.projections import registered
from tests.billing.test_stripe import fake_stripe, stripe_server, top_up  # noqa: F401
from tests.tasks.conftest import (  # noqa: F401  (fixtures)
    cpu_spec,
    funded,
    task_payload,
    upload_digits,
    wait_for,
    worker,
)

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot() -> dict[str, dict[str, list[dict]]]:
    """Every row of every registered projection's read models, by projection, in pk order."""
    return {
        projection.name: {
            model._meta.label: list(model._base_manager.order_by("pk").values())
            for model in projection.models}
        for projection in registered()}


def until(api, account, path, *states, what):
    def there():
        body = api.as_(account).get(path).json()
        return body if body["state"] in states else None
    return wait_for(there, timeout=120, what=what)


def history_touching_every_read_model(api, account, project, spec) -> None:
    as_a = api.as_(account)
    dataset = upload_digits(api, account, project["id"])
    task = as_a.post("/api/v1/tasks/", task_payload(project["id"], dataset["id"], spec,
                                                    epochs=1), format="json").json()
    task = until(api, account, f"/api/v1/tasks/{task['id']}/", "succeeded", "failed",
                 "stopped", what="training")
    assert task["state"] == "succeeded", task
    saved = as_a.post(f"/api/v1/tasks/{task['id']}/template/", {"name": "digits"},
                      format="json")
    assert saved.status_code == 201, saved.content

    def evaluated():
        found = as_a.get(f"/api/v1/evaluations/?task={task['id']}").json()["results"]
        return found if found and all(e["state"] in ("succeeded", "failed") for e in found) \
            else None
    wait_for(evaluated, timeout=120, what="the automatic evaluation")
    manual = as_a.post("/api/v1/evaluations/", {"model": task["model"],
                                                "dataset": dataset["id"]}, format="json")
    assert manual.status_code == 201, manual.content
    until(api, account, f"/api/v1/evaluations/{manual.json()['id']}/", "succeeded", "failed",
          what="the manual evaluation")

    corrected = as_a.post(f"/api/v1/datasets/{dataset['id']}/corrections/", {
        "corrections": [{"file_name": "digit-0/0.png", "label": "digit-1"}]}, format="json")
    assert corrected.status_code == 201, corrected.content
    until(api, account, f"/api/v1/datasets/{corrected.json()['id']}/", "ready", "invalid",
          what="the corrected version's validation")
    second = as_a.post(f"/api/v1/tasks/{task['id']}/versions/", {"epochs": 1}, format="json")
    assert second.status_code == 201, second.content
    second = until(api, account, f"/api/v1/tasks/{second.json()['id']}/", "succeeded",
                   "failed", "stopped", what="the second version's training")
    assert second["state"] == "succeeded", second

    service = as_a.post("/api/v1/services/", {"model": task["model"], "name": "digits",
                                              "spec": str(spec.id)}, format="json")
    assert service.status_code == 201, service.content
    path = f"/api/v1/services/{service.json()['id']}/"
    until(api, account, path, "running", "failed", what="the service to start")
    moved = as_a.post(f"{path}model/", {"model": second["model"]}, format="json")
    assert moved.status_code == 202, moved.content
    wait_for(lambda: [u["state"] for u in as_a.get(path).json()["updates"]] == ["done"],
             timeout=120, what="the service to move to the second model")
    assert as_a.post(f"{path}stop/").status_code == 202
    until(api, account, path, "stopped", "failed", what="the service to stop")


def test_every_projection_rebuilds_into_identical_rows(
        api, funded, project_of_a, cpu_spec, worker, settings):  # noqa: F811  (fixtures)
    settings.TASK_AUTO_EVALUATE = True
    history_touching_every_read_model(api, funded, project_of_a, cpu_spec)
    top_up(api, funded)
    bought = api.as_(funded).post("/api/v1/billing/prepaid/", {"spec": str(cpu_spec.id),
                                                                "hours": 1}, format="json")
    assert bought.status_code == 201, bought.content
    assert wallet.view(funded.tenant_id).frozen == 0  # every bill of the history settled
    before = snapshot()
    untested = sorted(f"{name} ({label})" for name, tables in before.items()
                      for label, rows in tables.items() if not rows)
    assert not untested, f"the history leaves these read models empty: {untested}"

    for projection in registered():  # read models are disposable; the log is the truth
        projection.reset()
    assert not any(rows for tables in snapshot().values() for rows in tables.values())
    call_command("rebuild_projections")

    after = snapshot()
    for name in before:
        assert after[name] == before[name], f"{name} rebuilt differently"
