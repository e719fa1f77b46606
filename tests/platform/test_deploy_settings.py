"""Settings a deployment relies on: static files outside DATA_DIR, the console's origin trusted.

Each case loads the production settings in a subprocess with a clean environment, as a container
starts, and prints the values it checks.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production(tmp_path: Path, **extra: str) -> dict:
    env = {
        "PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "automl.example.com,localhost",
        "PUBLIC_URL": "https://automl.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/automl",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DRAMATIQ_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/",
    } | extra
    code = ("import json; from config.settings import production as s; print(json.dumps("
            "{'static': str(s.STATIC_ROOT), 'data': str(s.DATA_DIR), "
            "'csrf': s.CSRF_TRUSTED_ORIGINS, "
            "'style': s.STORAGES['default'].get('OPTIONS', {}).get('addressing_style')}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_static_files_live_in_the_install_not_under_data_dir(tmp_path):
    values = production(tmp_path)
    assert not Path(values["static"]).is_relative_to(values["data"])
    assert Path(values["static"]) == ROOT / "staticfiles"


def test_static_root_can_be_moved(tmp_path):
    assert production(tmp_path, STATIC_ROOT=str(tmp_path / "s"))["static"] == str(tmp_path / "s")


def test_the_public_url_is_a_trusted_csrf_origin_by_default(tmp_path):
    assert production(tmp_path)["csrf"] == ["https://automl.example.com"]
    given = production(tmp_path, CSRF_TRUSTED_ORIGINS="https://a.example.com")
    assert given["csrf"] == ["https://a.example.com"]


def test_path_style_addressing_for_a_plain_hostname_endpoint(tmp_path):
    values = production(tmp_path, S3_BUCKET="automl", S3_ENDPOINT_URL="http://seaweedfs:8333",
                        S3_ADDRESSING_STYLE="path")
    assert values["style"] == "path"
    assert production(tmp_path, S3_BUCKET="automl")["style"] is None
