"""POST /api/v1/models/{id}/check/: one image through a model on a CPU worker, no service."""

import io
import uuid

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from modelregistry import api as modelregistry
from modelregistry import checks
from modelregistry.models import TrainedModel
from tests.datasets.conftest import private_storage, stored_files  # noqa: F401
from tests.tasks.conftest import worker  # noqa: F401
from training_runtime import models
from training_runtime.export import export_artifact
from training_runtime.predict import Predictor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model(tenant_a, private_storage, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    net = models.build(models.get("classification", "small_cnn"), num_classes=3).eval()
    folder = export_artifact(net, tmp_path / "m", scenario="classification",
                             model_name="small_cnn", labels=["a", "b", "c"], input_size=32,
                             normalization=None, metrics={})
    model_id = uuid.uuid4()
    key = modelregistry.store_artifact(folder, tenant_a.tenant_id, model_id)
    TrainedModel.objects.create(
        id=model_id, tenant_id=tenant_a.tenant_id, project_id=uuid.uuid4(),
        task_id=uuid.uuid4(), version=1, scenario="classification", model_name="small_cnn",
        labels=["a", "b", "c"], artifact_key=key, input_size=[32, 32],
        train_dataset_id=uuid.uuid4(), created_at=timezone.now(),
        formats={"artifact": {"key": key}})
    return model_id, folder


def png() -> bytes:
    pixels = np.random.default_rng(5).integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def check(api, account, model_id, data):
    return api.as_(account).post(f"/api/v1/models/{model_id}/check/", {
        "image": SimpleUploadedFile("x.png", data), "top_k": 3}, format="multipart")


def test_one_image_gives_the_models_predictions(api, tenant_a, model, worker,  # noqa: F811
                                                private_storage):  # noqa: F811
    model_id, folder = model

    answered = check(api, tenant_a, model_id, png())

    assert answered.status_code == 200, answered.content
    expected = Predictor.load(folder).predict([png()], top_k=3)[0]
    got = answered.json()["predictions"]
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    assert np.allclose([p["score"] for p in got], [p["score"] for p in expected], atol=1e-6)
    assert not [f for f in stored_files(private_storage) if f.startswith("checks/")]


def test_not_an_image_is_a_400_and_another_tenants_model_a_404(api, tenant_a, tenant_b, model,
                                                                worker):  # noqa: F811
    model_id, _ = model

    bad = check(api, tenant_a, model_id, b"not an image")
    foreign = check(api, tenant_b, model_id, png())

    assert bad.status_code == 400 and "image" in bad.json()["error"]["fields"]
    assert foreign.status_code == 404


def test_no_answer_in_time_is_a_503_with_retry_after(api, tenant_a, model, monkeypatch):
    monkeypatch.setattr(checks, "CHECK_WAIT_S", 0.2)  # no worker runs in this test

    late = check(api, tenant_a, model[0], png())

    assert late.status_code == 503 and late["Retry-After"] == "10"
