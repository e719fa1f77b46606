"""Compose's object store: SeaweedFS's identities written from the env at start, and the one-shot
that creates the bucket (run here against moto's S3 server)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[2]
ENV = {"S3_ADMIN_ACCESS_KEY": "admin-key", "S3_ADMIN_SECRET_KEY": "admin-secret",
       "AWS_ACCESS_KEY_ID": "app-key", "AWS_SECRET_ACCESS_KEY": "app-secret",
       "S3_BUCKET": "automl"}


def test_seaweedfs_start_script_writes_the_two_identities(tmp_path):
    service = yaml.safe_load((ROOT / "platform" / "compose.yaml").read_text())["services"]
    script = service["seaweedfs"]["command"][0].replace("$$", "$")  # as Compose hands it over
    script = script.replace("/tmp/s3.json", str(tmp_path / "s3.json"))
    script = script.replace("exec weed server", "echo weed server")  # no SeaweedFS here
    result = subprocess.run(["sh", "-c", script], env={"PATH": os.environ["PATH"], **ENV},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"-s3.config={tmp_path / 's3.json'}" in result.stdout
    identities = {i["name"]: i for i in json.loads((tmp_path / "s3.json").read_text())
                  ["identities"]}
    assert identities["admin"]["credentials"] == [{"accessKey": "admin-key",
                                                   "secretKey": "admin-secret"}]
    assert "Admin" in identities["admin"]["actions"]
    # The app's key reaches its bucket only, and cannot administer the store.
    assert identities["automl"]["credentials"] == [{"accessKey": "app-key",
                                                    "secretKey": "app-secret"}]
    assert all(action.endswith(":automl") for action in identities["automl"]["actions"])
    assert (tmp_path / "s3.json").stat().st_mode & 0o077 == 0, "secrets readable by others"


@pytest.fixture
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def create_bucket(endpoint: str, bucket: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "platform" / "create_bucket.py")],
                          env={"PATH": os.environ["PATH"], **ENV, "S3_ENDPOINT_URL": endpoint,
                               "S3_BUCKET": bucket},
                          capture_output=True, text=True, timeout=60)


def test_storage_init_creates_the_bucket_once(s3_endpoint):
    import boto3

    # A name of its own: moto keeps one store per process, shared with other tests' buckets.
    bucket = f"automl-{uuid.uuid4().hex[:12]}"
    first, again = create_bucket(s3_endpoint, bucket), create_bucket(s3_endpoint, bucket)
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    assert again.returncode == 0 and "exists" in again.stdout, again.stderr
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]].count(bucket) == 1
