"""A task version's lineage, whole: dataset -> config -> training -> model -> evaluations and
services (SPEC T9), through the public API, for its own tenant only."""

import pytest

from .conftest import task_payload, upload_digits, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def until(client, path, *states, what):
    def there():
        body = client.get(path).json()
        return body if body["state"] in states else None
    return wait_for(there, timeout=120, what=what)


def test_the_lineage_runs_from_the_dataset_to_the_models_evaluations_and_services(
        api, funded, tenant_b, project_of_a, cpu_spec, worker, settings):
    settings.TASK_AUTO_EVALUATE = True
    as_a = api.as_(funded)
    dataset = upload_digits(api, funded, project_of_a["id"])
    other = upload_digits(api, funded, project_of_a["id"], per_label=6)
    task = as_a.post("/api/v1/tasks/", task_payload(project_of_a["id"], dataset["id"],
                                                    cpu_spec, epochs=1), format="json").json()
    task = until(as_a, f"/api/v1/tasks/{task['id']}/", "succeeded", "failed", "stopped",
                 what="training")
    assert task["state"] == "succeeded", task
    model = task["model"]
    automatic = wait_for(lambda: as_a.get(f"/api/v1/evaluations/?task={task['id']}").json()[
        "results"], timeout=120, what="the automatic evaluation")[0]
    manual = as_a.post("/api/v1/evaluations/", {"model": model, "dataset": other["id"]},
                       format="json")
    assert manual.status_code == 201, manual.content
    manual = manual.json()
    service = as_a.post("/api/v1/services/", {"model": model, "name": "digits",
                                              "spec": str(cpu_spec.id)}, format="json")
    assert service.status_code == 201, service.content
    service = service.json()
    try:
        response = as_a.get(f"/api/v1/tasks/{task['id']}/lineage/")
    finally:  # an instance holds a worker thread until its service stops
        as_a.post(f"/api/v1/services/{service['id']}/stop/")
        until(as_a, f"/api/v1/services/{service['id']}/", "stopped", "failed",
              what="the service to stop")

    assert response.status_code == 200, response.content
    graph = response.json()
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert len(nodes) == len(graph["nodes"])  # every node once
    assert {(n["kind"], n.get("role")) for n in graph["nodes"]} == {
        ("dataset", "train"), ("config", None), ("training", None), ("model", None),
        ("evaluation", None), ("dataset", "evaluation"), ("service", None)}
    assert nodes[model]["version"] == "V001"
    assert nodes[service["id"]]["name"] == "digits"
    assert {n["id"] for n in graph["nodes"] if n["kind"] == "evaluation"} == {
        automatic["id"], manual["id"]}
    assert nodes[manual["id"]]["dataset"] == other["id"]
    config = f"config:{task['id']}"
    assert sorted((e["from"], e["to"]) for e in graph["edges"]) == sorted([
        (dataset["id"], config), (config, task["id"]), (task["id"], model),
        (model, automatic["id"]), (automatic["dataset"], automatic["id"]),
        (model, manual["id"]), (other["id"], manual["id"]),
        (model, service["id"])])
    assert {e[k] for e in graph["edges"] for k in ("from", "to")} <= set(nodes)

    stranger = api.as_(tenant_b).get(f"/api/v1/tasks/{task['id']}/lineage/")
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"
