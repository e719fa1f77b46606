"""Object storage through django-storages against a real S3 protocol server (moto's)."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from core.health import check_storage


@pytest.fixture
def s3(settings, monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket="automl-test")
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "automl-test", "endpoint_url": endpoint,
                    "region_name": "us-east-1", "querystring_expire": 60,
                    "file_overwrite": False, "signature_version": "s3v4"}}}
    yield endpoint
    server.stop()


def test_files_round_trip_through_s3(s3):
    storage = storages["default"]
    name = storage.save("datasets/t1/images/a.txt", ContentFile(b"hello"))
    assert storage.exists(name)
    with storage.open(name) as handle:
        assert handle.read() == b"hello"
    again = storage.save("datasets/t1/images/a.txt", ContentFile(b"other"))
    assert again != name  # never overwrites what is stored
    url = storage.url(name)
    assert url.startswith(s3)
    assert "X-Amz-Expires=60" in url  # a short-lived signed URL, not a public one


def test_health_storage_check_uses_the_configured_backend(s3, settings):
    check_storage()  # passes against the bucket
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "no-such-bucket", "endpoint_url": s3,
                    "region_name": "us-east-1"}}}
    with pytest.raises(Exception):  # noqa: B017 - any S3 error is a failed check
        check_storage()
