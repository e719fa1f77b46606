"""A task's model leaves in every format: trained on the in-process worker, its ONNX file
downloads and answers as the platform's own artifact does; `output_path` receives the files."""

import io
import zipfile

import numpy as np
import onnxruntime
import pytest
import torch

from modelregistry.models import TrainedModel
from tasks.models import Task
from tests.datasets.conftest import private_storage, stored_files  # noqa: F401
from tests.tasks.conftest import cpu_spec, funded, task_payload, upload_digits, wait_for, worker  # noqa: F401
from training_runtime.predict import Predictor

pytestmark = pytest.mark.django_db(transaction=True)


def finished(api, account, task_id):
    def done():
        body = api.as_(account).get(f"/api/v1/tasks/{task_id}/").json()
        return body if body["state"] in ("succeeded", "failed", "stopped") else None
    return wait_for(done, timeout=120, what=f"task {task_id} to finish")


def test_a_trained_model_downloads_as_onnx_and_lands_in_its_output_path(
        api, funded, project_of_a, cpu_spec, worker, private_storage, tmp_path):  # noqa: F811
    dataset = upload_digits(api, funded, project_of_a["id"], per_label=4)
    created = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], dataset["id"], cpu_spec, epochs=1, output_path="digits/v1"),
        format="json")
    assert created.status_code == 201, created.content

    body = finished(api, funded, created.json()["id"])

    assert body["state"] == "succeeded", body
    client = api.as_(funded)
    model = client.get(f"/api/v1/models/{body['model']}/").json()
    assert {f: v["available"] for f, v in model["formats"].items()} == {
        "artifact": True, "onnx": True, "torchscript": True}
    onnx_bytes = b"".join(client.get(f"/api/v1/models/{body['model']}/download/?format=onnx")
                          .streaming_content)
    archive = b"".join(client.get(f"/api/v1/models/{body['model']}/download/")
                       .streaming_content)
    zipfile.ZipFile(io.BytesIO(archive)).extractall(tmp_path / "artifact")
    images = np.random.default_rng(3).integers(0, 256, size=(2, 40, 40, 3), dtype=np.uint8)
    predictor = Predictor.load(tmp_path / "artifact")
    expected = [max(p, key=lambda x: x["score"]) for p in predictor.predict(list(images))]
    batch = torch.stack(predictor.preprocess(list(images))[0]).numpy()
    logits = onnxruntime.InferenceSession(onnx_bytes).run(None, {"images": batch})[0]
    probabilities = torch.softmax(torch.from_numpy(logits), 1)
    assert [model["labels"][i] for i in probabilities.argmax(1)] == [e["label"] for e in expected]
    assert np.allclose(probabilities.max(1).values, [e["score"] for e in expected], atol=1e-4)
    prefix = f"exports/{funded.tenant_id}/digits/v1/{body['model']}"
    assert {f"{prefix}.zip", f"{prefix}.onnx", f"{prefix}.torchscript.pt"} <= set(
        stored_files(private_storage))


@pytest.mark.parametrize("path", ["../x", "/abs", "exports/00000000-0000-0000-0000-000000000000/x"])
def test_an_output_path_outside_the_tenant_is_a_400_and_no_task(api, funded, project_of_a,  # noqa: F811
                                                                 cpu_spec, path):  # noqa: F811
    created = api.as_(funded).post("/api/v1/tasks/", task_payload(
        project_of_a["id"], str(project_of_a["id"]), cpu_spec, output_path=path), format="json")

    assert created.status_code == 400, created.content
    assert "output_path" in created.json()["error"]["fields"]
    assert not Task.objects.for_tenant(funded.tenant_id).exists()
    assert not TrainedModel.objects.for_tenant(funded.tenant_id).exists()
