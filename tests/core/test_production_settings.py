"""Production settings refuse what is unsafe, and pass `manage.py check --deploy` when valid.

The settings module runs in a subprocess with a clean environment, as a deployment would start.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "platform" / "env.template"


def template() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in TEMPLATE.read_text().splitlines()
             if line and not line.startswith("#") and "=" in line)
    return {name: value for name, value in pairs}


def valid_env(tmp_path: Path) -> dict[str, str]:
    """A production environment that points at the local services (nothing connects here)."""
    return {
        "PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "automl.example.com,localhost",
        "PUBLIC_URL": "https://automl.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/automl",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DRAMATIQ_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/",
    }


def load(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import config.settings.production"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def refused(env: dict[str, str]) -> str:
    result = load(env)
    assert result.returncode != 0, "production settings accepted an unsafe environment"
    assert "ImproperlyConfigured" in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_a_valid_production_environment_loads(tmp_path):
    result = load(valid_env(tmp_path))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("key", ["short-" + "k" * 40, "dev-insecure-change-me-" + "x" * 32,
                                 "a" * 60])
def test_a_weak_secret_key_is_refused(tmp_path, key):
    assert "SECRET_KEY" in refused(valid_env(tmp_path) | {"SECRET_KEY": key})


@pytest.mark.parametrize("hosts", [None, "", "*", "automl.example.com,*"])
def test_allowed_hosts_must_name_the_hosts(tmp_path, hosts):
    env = valid_env(tmp_path)
    env.pop("ALLOWED_HOSTS")
    if hosts is not None:
        env["ALLOWED_HOSTS"] = hosts
    assert "ALLOWED_HOSTS" in refused(env)


@pytest.mark.parametrize("url", [None, "automl.example.com", "ftp://automl.example.com",
                                 "https://automl.example.com/console/"])
def test_public_url_must_be_set_to_an_origin(tmp_path, url):
    env = valid_env(tmp_path)
    env.pop("PUBLIC_URL")
    if url is not None:
        env["PUBLIC_URL"] = url
    assert "PUBLIC_URL" in refused(env)


def test_the_env_template_as_shipped_does_not_start(tmp_path):
    env = template() | {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path)}
    assert "placeholder" in refused(env)


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "DRAMATIQ_BROKER_URL",
                                  "AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD",
                                  "RABBITMQ_DEFAULT_PASS", "S3_ADMIN_SECRET_KEY"])
def test_each_placeholder_password_of_the_template_is_refused(tmp_path, name):
    value = template()[name]
    assert "change-me" in value, f"the template's {name} should be a placeholder"
    assert name in refused(valid_env(tmp_path) | {name: value})


def test_the_template_ships_no_working_password():
    """Every password in the template is a placeholder the settings refuse."""
    shipped = template()
    for name in ("POSTGRES_PASSWORD", "RABBITMQ_DEFAULT_PASS", "S3_ADMIN_SECRET_KEY",
                 "AWS_SECRET_ACCESS_KEY"):
        assert "change-me" in shipped[name], name
    assert "guest:guest" not in shipped["DRAMATIQ_BROKER_URL"]
    assert shipped["RABBITMQ_DEFAULT_USER"] != "guest"


def test_make_env_fills_every_placeholder_consistently(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "platform" / "make_env.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    made = dict(line.split("=", 1) for line in result.stdout.splitlines()
                if line and not line.startswith("#") and "=" in line)
    assert set(made) == set(template())
    assert not any("change-me" in value or "$" in value for value in made.values())
    assert len(made["SECRET_KEY"]) >= 50
    assert f":{made['POSTGRES_PASSWORD']}@" in made["DATABASE_URL"]
    assert f":{made['RABBITMQ_DEFAULT_PASS']}@" in made["DRAMATIQ_BROKER_URL"]
    # What is left to the operator is the deployment's own names, not secrets.
    env = made | {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path)}
    assert load(env).returncode == 0, load(env).stderr


def test_check_deploy_is_clean_for_a_valid_production_environment(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=valid_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout + result.stderr
