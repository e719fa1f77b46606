"""Every trained model evaluates itself: on the task's test set, or on the hold-out split its
training validated on; a model trained on a built-in sample evaluates on that sample only."""

import pytest

from datasets import api as datasets
from datasets.models import Dataset
from datasets.samples import seed_samples
from tests.tasks.conftest import task_payload, upload_digits, wait_for, worker  # noqa: F401
from training_runtime.data.read import read_dataset
from training_runtime.pipeline import TrainingJob

pytestmark = pytest.mark.django_db(transaction=True)


def trained(api, account, payload) -> dict:
    task = api.as_(account).post("/api/v1/tasks/", payload, format="json")
    assert task.status_code == 201, task.content

    def done():
        body = api.as_(account).get(f"/api/v1/tasks/{task.json()['id']}/").json()
        return body if body["state"] in ("succeeded", "failed", "stopped") else None

    body = wait_for(done, timeout=120, what="the task to finish")
    assert body["state"] == "succeeded", body
    return body


def automatic_evaluation(api, account, task_id) -> dict:
    def evaluated():
        found = api.as_(account).get(f"/api/v1/evaluations/?task={task_id}").json()["results"]
        return found[0] if found and found[0]["state"] in ("succeeded", "failed") else None

    return wait_for(evaluated, timeout=120, what="the automatic evaluation")


def holdout_size(dataset_id) -> int:
    dataset = Dataset.objects.unscoped().get(id=dataset_id)
    with datasets.materialize(dataset) as root:
        index, _ = read_dataset(root, dataset.kind, dataset.format)
    _train, held_out = index.split(seed=TrainingJob.seed)
    return len(held_out)


def test_a_task_on_a_sample_evaluates_on_its_holdout_and_nowhere_else(api, funded, project_of_a,
                                                                     cpu_spec, worker):  # noqa: F811
    (sample,) = [d for d in seed_samples(images=15) if d.kind == "classification"]
    task = trained(api, funded, task_payload(project_of_a["id"], str(sample.id), cpu_spec,
                                             epochs=1))

    evaluation = automatic_evaluation(api, funded, task["id"])

    assert evaluation["state"] == "succeeded", evaluation
    assert (evaluation["model"], evaluation["dataset"]) == (task["model"], str(sample.id))
    assert evaluation["billing_mode"] == "included" and evaluation["options"]["automatic"]
    assert evaluation["summary"]["split"] == "holdout"
    assert evaluation["summary"]["image_count"] == holdout_size(sample.id) < 15
    assert "reference only" in evaluation["summary"]["warning"]
    model = api.as_(funded).get(f"/api/v1/models/{task['model']}/").json()
    assert evaluation["metrics"]["accuracy"] == pytest.approx(model["metrics"]["accuracy"])

    own = upload_digits(api, funded, project_of_a["id"])
    refused = api.as_(funded).post("/api/v1/evaluations/", {
        "model": task["model"], "dataset": own["id"]}, format="json")
    assert refused.status_code == 400, refused.content
    assert "dataset" in refused.json()["error"]["fields"]
    assert "sample" in refused.json()["error"]["message"]
    again = api.as_(funded).post("/api/v1/evaluations/", {
        "model": task["model"], "dataset": str(sample.id), "spec": str(cpu_spec.id)},
        format="json")
    assert again.status_code == 201, again.content


def test_a_task_with_a_test_set_evaluates_on_all_of_it(api, funded, project_of_a, cpu_spec,
                                                       worker):  # noqa: F811
    train = upload_digits(api, funded, project_of_a["id"])
    test = upload_digits(api, funded, project_of_a["id"], per_label=5)
    task = trained(api, funded, task_payload(project_of_a["id"], train["id"], cpu_spec,
                                             epochs=1, test_dataset=test["id"]))

    evaluation = automatic_evaluation(api, funded, task["id"])

    assert evaluation["state"] == "succeeded", evaluation
    assert evaluation["dataset"] == test["id"] and evaluation["summary"]["split"] == "all"
    assert evaluation["summary"]["image_count"] == test["image_count"] == 15
    assert evaluation["task"] == task["id"]
