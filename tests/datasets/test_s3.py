"""P5: dataset zips go to S3-compatible object storage (moto's server) and come back from it."""

import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from datasets import api as datasets_api
from datasets.models import Dataset
from tests.datasets.zips import coco_files, make_zip, upload, validate


@pytest.fixture
def bucket() -> str:
    """A bucket of this test's own: moto keeps its state per process, across servers."""
    return f"datasets-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3(settings, monkeypatch, private_storage, bucket):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                    "access_key": "test", "secret_key": "test", "file_overwrite": False,
                    "signature_version": "s3v4"}}}
    yield client
    server.stop()


def keys(client, bucket) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_dataset_zip_lands_in_the_bucket_and_is_read_back_from_it(s3, bucket, as_a, tenant_a,
                                                                    project, private_storage):
    data = make_zip(coco_files(segmentation=True))

    created = upload(as_a, project, data, kind="segmentation", fmt="coco")

    assert created.status_code == 201, created.content
    dataset_id = created.json()["id"]
    key = f"datasets/{tenant_a.tenant_id}/{dataset_id}/v1.zip"
    assert keys(s3, bucket) == [key]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert not private_storage.exists()  # nothing went to local disk storage

    validate(dataset_id)  # fetches the zip from the bucket

    assert as_a.get(f"/api/v1/datasets/{dataset_id}/").json()["state"] == "ready"
    dataset = Dataset.objects.unscoped().get(pk=dataset_id)
    with datasets_api.materialize(dataset) as root:
        assert (root / "annotations.json").read_bytes() == coco_files(
            segmentation=True)["annotations.json"]
        assert len(list((root / "images").iterdir())) == 3


def test_a_hostile_zip_never_reaches_the_bucket(s3, bucket, as_a, project):
    response = upload(as_a, project, make_zip({**coco_files(), "../x.json": b"{}"}),
                      kind="detection", fmt="coco")

    assert response.status_code == 400
    assert keys(s3, bucket) == []
