"""Entry point for dramatiq worker processes: `dramatiq config.worker --queues gpu`."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
# Metrics of every worker process go to one folder, which dramatiq's exposition server (port
# dramatiq_prom_port, 9191) reads: set before prometheus_client is first imported.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ.setdefault("dramatiq_prom_db", os.environ["PROMETHEUS_MULTIPROC_DIR"])
else:
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ.setdefault(
        "dramatiq_prom_db", os.path.join(tempfile.gettempdir(), "dramatiq-prometheus"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
django.setup()

import dramatiq  # noqa: E402

from core.actors import discover  # noqa: E402
from core.telemetry.jobs import add_dramatiq_prometheus  # noqa: E402

add_dramatiq_prometheus(dramatiq.get_broker())
discover()
