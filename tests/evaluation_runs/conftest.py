"""A tenant with money, a cheap CPU spec, a validated digits dataset and an exported model."""

import io
import shutil
import uuid
import zipfile
from pathlib import Path

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from billing import wallet
from billing.models import ComputeSpec
from tests.datasets.zips import upload, validate
from tests.tasks.conftest import digits_zip

DIGIT_LABELS = ["digit-0", "digit-1", "digit-7"]


@pytest.fixture
def cpu_spec(db):
    return ComputeSpec.objects.create(name="eval-cpu-1", kind="cpu", cpu_cores=1, memory_gib=2,
                                      price_per_hour=3600)


@pytest.fixture
def funded(tenant_a):
    wallet.adjust(tenant_a.tenant_id, 100_000, "test funding", "staff:test")
    return tenant_a


@pytest.fixture(scope="session")
def digits_bytes() -> bytes:
    return digits_zip(per_label=12)


def upload_ready(api, account, project_id, data, **options) -> dict:
    response = upload(api.as_(account), project_id, data, **options)
    assert response.status_code == 201, response.content
    validate(response.json()["id"])
    body = api.as_(account).get(f"/api/v1/datasets/{response.json()['id']}/").json()
    assert body["state"] == "ready", body
    return body


@pytest.fixture
def digits_dataset(api, funded, project_of_a, digits_bytes) -> dict:
    return upload_ready(api, funded, project_of_a["id"], digits_bytes, name="digits")


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
    return buffer.getvalue()


def stored_model(tenant_id, project_id, artifact: Path, scenario: str, model_name: str,
                 labels: list[str]):
    """A TrainedModel row as a succeeded task leaves it, its artifact zipped in storage."""
    from modelregistry.models import TrainedModel

    model_id = uuid.uuid4()
    key = f"models/{tenant_id}/{model_id}.zip"
    default_storage.save(key, ContentFile(zip_folder(artifact)))
    return TrainedModel.objects.create(
        id=model_id, tenant_id=tenant_id, project_id=project_id, task_id=uuid.uuid4(),
        version=1, scenario=scenario, model_name=model_name, labels=labels, metrics={},
        artifact_key=key, input_size=[32, 32], train_dataset_id=uuid.uuid4(),
        created_at=timezone.now())


@pytest.fixture(scope="session")
def classifier_artifact(tmp_path_factory) -> Path:
    """An untrained small_cnn on the digits labels: quality does not matter, equality does."""
    from training_runtime import models
    from training_runtime.export.artifact import export_artifact

    torch.manual_seed(0)
    net = models.build(models.get("classification", "small_cnn"), num_classes=3).eval()
    path = tmp_path_factory.mktemp("cls") / "model"
    export_artifact(net, path, scenario="classification", model_name="small_cnn",
                    labels=DIGIT_LABELS, input_size=(32, 32), normalization=None,
                    metrics={}, program="none")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def classifier(funded, project_of_a, classifier_artifact):
    return stored_model(funded.tenant_id, project_of_a["id"], classifier_artifact,
                        "classification", "small_cnn", DIGIT_LABELS)


def evaluated_through_api(api, account, model, dataset_id: str, **options) -> tuple[dict, list]:
    """Create an evaluation, run it on this thread, and read its report and predictions."""
    from evaluation.actors import run_evaluation

    client = api.as_(account)
    created = client.post("/api/v1/evaluations/", {
        "model": str(model.id), "dataset": dataset_id, **options}, format="json").json()
    run_evaluation.fn(created["id"])
    body = client.get(f"/api/v1/evaluations/{created['id']}/").json()
    assert body["state"] == "succeeded", body
    return body, client.get(f"/api/v1/evaluations/{created['id']}/predictions/").json()
