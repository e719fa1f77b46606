"""Create the platform's bucket on the compose object store (storage-init); safe to run again.

Runs in the app image with the admin key (S3_ADMIN_ACCESS_KEY / S3_ADMIN_SECRET_KEY); the app's
own key (AWS_*) may read and write this bucket only. Retries while the store starts.
"""

import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ATTEMPTS = 60


def create_bucket() -> str:
    """Create S3_BUCKET unless it exists; the outcome in words."""
    client = boto3.client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["S3_ADMIN_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_ADMIN_SECRET_KEY"],
        region_name=os.environ.get("AWS_S3_REGION_NAME") or "us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    bucket = os.environ["S3_BUCKET"]
    try:
        client.head_bucket(Bucket=bucket)
        return f"bucket {bucket} exists"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=bucket)
    return f"bucket {bucket} created"


def main() -> int:
    """Try until the store answers; 1 if it never does."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            print(create_bucket(), flush=True)
            return 0
        except (BotoCoreError, ClientError) as exc:
            print(f"storage-init: attempt {attempt}/{ATTEMPTS}: {exc}", file=sys.stderr, flush=True)
            time.sleep(2)
    return 1


if __name__ == "__main__":
    sys.exit(main())
