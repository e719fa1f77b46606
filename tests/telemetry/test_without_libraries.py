"""`make run` needs none of the telemetry libraries: with each import failing, the platform
starts, the probes answer, /metrics says it is off, and a variable that needs a missing library
is logged, not fatal (LOG_FORMAT=json excepted: it refuses to start with a clear message)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ["prometheus_client", "pythonjsonlogger", "opentelemetry", "sentry_sdk"]

SCRIPT = textwrap.dedent("""
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ImportError(f"{{name}} is not installed")

    sys.meta_path.insert(0, Refuse())
    import django
    from django.conf import settings
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    print("livez", client.get("/livez").status_code)
    print("metrics", client.get("/metrics").status_code)
    print("schema", client.get("/api/v1/schema/").status_code)
    from core.telemetry import tracing
    print("tracing", tracing.active())
""")


def run(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", **extra_env}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run([sys.executable, "-c", SCRIPT.format(blocked=BLOCKED)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_runs_without_any_of_them():
    result = run({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                  "SENTRY_DSN": "https://key@127.0.0.1:9/1"})
    assert result.returncode == 0, result.stderr
    assert "livez 200" in result.stdout
    assert "metrics 404" in result.stdout
    assert "schema 200" in result.stdout
    assert "tracing False" in result.stdout
    assert "OpenTelemetry packages are missing" in result.stderr
    assert "sentry-sdk is missing" in result.stderr


def test_json_logs_without_the_library_refuse_to_start():
    result = run({"LOG_FORMAT": "json"})
    assert result.returncode != 0
    assert "LOG_FORMAT=json needs python-json-logger" in result.stderr
