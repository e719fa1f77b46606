"""GET /api/v1/models/{id}/download/: each format streamed from local disk or redirected to a
presigned URL on S3 (moto's server); the tenant's own models only; output_path copies."""

import uuid

import boto3
import httpx
import onnx
import pytest
import torch
from django.utils import timezone
from moto.server import ThreadedMotoServer

from core.errors import ValidationFailed
from modelregistry import api as modelregistry
from modelregistry import formats
from modelregistry.models import TrainedModel
from tests.datasets.conftest import private_storage, stored_files  # noqa: F401
from training_runtime import models
from training_runtime.export import export_artifact

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    model = models.build(models.get("classification", "small_cnn"), num_classes=2).eval()
    return export_artifact(model, tmp_path_factory.mktemp("export") / "model",
                           scenario="classification", model_name="small_cnn",
                           labels=["cat", "dog"], input_size=32, normalization=None,
                           metrics={}, portable=True)


def register(folder, tenant_id, output_path=""):
    """Store the exported folder as the task runner does, and the model row it registers."""
    model_id = uuid.uuid4()
    key = modelregistry.store_artifact(folder, tenant_id, model_id)
    stored = modelregistry.store_formats(folder, tenant_id, model_id, output_path=output_path)
    return TrainedModel.objects.create(
        id=model_id, tenant_id=tenant_id, project_id=uuid.uuid4(), task_id=uuid.uuid4(),
        version=1, scenario="classification", model_name="small_cnn", labels=["cat", "dog"],
        artifact_key=key, input_size=[32, 32], train_dataset_id=uuid.uuid4(),
        created_at=timezone.now(), formats=stored)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_each_format_downloads_from_local_disk(api, tenant_a, private_storage, folder):  # noqa: F811
    model = register(folder, tenant_a.tenant_id)
    client = api.as_(tenant_a)

    onnx_file = client.get(f"/api/v1/models/{model.id}/download/?format=onnx")
    script = client.get(f"/api/v1/models/{model.id}/download/?format=torchscript")
    artifact = client.get(f"/api/v1/models/{model.id}/download/")

    assert onnx_file.status_code == script.status_code == artifact.status_code == 200
    assert body(onnx_file) == (folder / "model.onnx").read_bytes()
    onnx.checker.check_model(onnx.load_from_string((folder / "model.onnx").read_bytes()))
    assert body(script) == (folder / "model.torchscript.pt").read_bytes()
    assert body(artifact)[:2] == b"PK" and artifact["Content-Type"] == "application/zip"
    shown = client.get(f"/api/v1/models/{model.id}/").json()["formats"]
    assert shown["onnx"]["available"] and shown["onnx"]["opset"] == 17
    assert "key" not in shown["onnx"]


def test_another_tenants_model_bad_and_missing_formats(api, tenant_a, tenant_b,
                                                        private_storage, folder):  # noqa: F811
    model = register(folder, tenant_a.tenant_id)
    TrainedModel.objects.unscoped().filter(id=model.id).update(formats={
        **model.formats, "torchscript": {"unavailable": "tracing failed"}})

    foreign = api.as_(tenant_b).get(f"/api/v1/models/{model.id}/download/?format=onnx")
    bad = api.as_(tenant_a).get(f"/api/v1/models/{model.id}/download/?format=pickle")
    missing = api.as_(tenant_a).get(f"/api/v1/models/{model.id}/download/?format=torchscript")

    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    assert bad.status_code == 400 and "format" in bad.json()["error"]["fields"]
    assert missing.status_code == 404
    message = missing.json()["error"]["message"]
    assert "tracing failed" in message and "artifact, onnx" in message


def test_output_path_receives_the_files_inside_the_tenants_prefix(tenant_a, private_storage,  # noqa: F811
                                                                  folder):
    model = register(folder, tenant_a.tenant_id, output_path="runs/first")

    prefix = f"exports/{tenant_a.tenant_id}/runs/first/{model.id}"
    assert {f"{prefix}.zip", f"{prefix}.onnx", f"{prefix}.torchscript.pt"} <= set(
        stored_files(private_storage))
    assert (private_storage / f"{prefix}.onnx").read_bytes() == (
        folder / "model.onnx").read_bytes()


@pytest.mark.parametrize("path", ["../elsewhere", "/etc/x", "a/../../b",
                                  f"exports/{uuid.uuid4()}/mine"])
def test_an_output_path_outside_the_tenants_prefix_is_refused(tenant_a, path):
    with pytest.raises(ValidationFailed) as refused:
        modelregistry.check_output_path(tenant_a.tenant_id, path)
    assert "output_path" in refused.value.fields


def test_the_tenants_own_full_prefix_is_accepted(tenant_a):
    own = f"exports/{tenant_a.tenant_id}"
    assert formats.output_prefix(tenant_a.tenant_id, f"{own}/runs") == f"{own}/runs"
    assert formats.output_prefix(tenant_a.tenant_id, "runs/./a") == f"{own}/runs/a"


@pytest.fixture
def s3(settings, monkeypatch):
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test").create_bucket(
        Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                    "access_key": "test", "secret_key": "test", "file_overwrite": False,
                    "signature_version": "s3v4"}}}
    yield endpoint
    server.stop()


def test_on_s3_each_format_is_a_redirect_to_a_presigned_url(api, tenant_a, s3, folder):
    model = register(folder, tenant_a.tenant_id)

    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.torchscript.pt")):
        response = api.as_(tenant_a).get(f"/api/v1/models/{model.id}/download/?format={fmt}")
        assert response.status_code == 302
        url = response["Location"]
        assert url.startswith(s3) and "X-Amz-Signature" in url and "X-Amz-Expires=300" in url
        assert httpx.get(url).content == (folder / name).read_bytes()
