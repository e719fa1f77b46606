"""A tenant with money, a spec, a validated digits dataset, and a worker running jobs."""

import io
import time
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from sklearn.datasets import load_digits

from billing import wallet
from billing.models import ComputeSpec
from tests.workers import stub_worker

PRICE_PER_HOUR = 3600  # one minor unit a second: charges read as seconds


def digits_zip(per_label: int = 12, labels: tuple[int, ...] = (0, 1, 7)) -> bytes:
    """scikit-learn's handwritten digits as 32x32 PNGs, one folder per digit, zipped."""
    digits = load_digits()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in labels:
            for i in np.flatnonzero(digits.target == label)[:per_label]:
                pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
                png = io.BytesIO()
                Image.fromarray(pixels).resize((32, 32)).convert("RGB").save(png, "PNG")
                archive.writestr(f"digit-{label}/{i}.png", png.getvalue())
    return buffer.getvalue()


def wait_for(predicate, timeout=60.0, every=0.1, what="condition"):
    """Poll until `predicate()` is truthy; its value, or a failure naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def cpu_spec(db):
    return ComputeSpec.objects.create(name="test-cpu-1", kind="cpu", cpu_cores=2, memory_gib=4,
                                      price_per_hour=PRICE_PER_HOUR)


@pytest.fixture
def funded(tenant_a):
    wallet.adjust(tenant_a.tenant_id, 100_000, "test funding", "staff:test")
    return tenant_a


@pytest.fixture
def worker(settings):
    """A dramatiq worker on the stub broker, as `make run` has in-process."""
    settings.TASK_PROGRESS_INTERVAL_S = 0.0
    settings.TASK_STOP_POLL_S = 0.05
    with stub_worker(threads=2) as broker:
        yield broker


def upload_digits(api, account, project_id, **zip_options) -> dict:
    """Upload the digits zip and wait until validation made it ready."""
    response = api.as_(account).post("/api/v1/datasets/", {
        "project": project_id, "name": "digits", "kind": "classification", "format": "folders",
        "file": SimpleUploadedFile("digits.zip", digits_zip(**zip_options),
                                   content_type="application/zip")}, format="multipart")
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]

    def ready():
        body = api.as_(account).get(f"/api/v1/datasets/{dataset_id}/").json()
        return body if body["state"] in ("ready", "invalid") else None

    body = wait_for(ready, what="dataset validation")
    assert body["state"] == "ready", body
    return body


def task_payload(project_id, dataset_id, spec, **overrides) -> dict:
    payload = {"project": project_id, "name": "digits-cnn", "scenario": "classification",
               "model": "small_cnn", "train_dataset": dataset_id, "epochs": 3,
               "learning_rate": 0.003, "batch_size": 8, "warmup_epochs": 0,
               "billing_mode": "postpaid", "spec": str(spec.id)}
    payload.update(overrides)
    return payload
