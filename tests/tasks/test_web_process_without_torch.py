"""The web process validates a task's model from the torch-free catalogue: serving the API
(every URL's views loaded) and refusing or accepting a model name never imports torch."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A fresh interpreter, as `manage.py serve` starts: the test process itself has torch loaded.
PROBE = """
import json, os, sys
os.environ.update(DJANGO_SETTINGS_MODULE="config.settings.test", TEST_DB="sqlite",
                  DATA_DIR=sys.argv[1], CI="")
import django
django.setup()
from django.core.management import call_command
from django.urls import get_resolver
from rest_framework.test import APIClient

call_command("migrate", verbosity=0)
get_resolver().url_patterns  # imports every view module, as the first request does
client = APIClient()
body = client.post("/api/v1/auth/signup/", {"email": "me@example.com", "password": "a long "
                   "password here", "tenant": "Acme"}, format="json").json()
client.credentials(HTTP_AUTHORIZATION="Bearer " + body["token"])
project = client.post("/api/v1/projects/", {"name": "P"}, format="json").json()["id"]
task = {"project": project, "name": "t", "scenario": "detection", "billing_mode": "postpaid",
        "train_dataset": project, "spec": project}
unknown = client.post("/api/v1/tasks/", {**task, "model": "yolov8"}, format="json")
known = client.post("/api/v1/tasks/", {**task, "model": "retinanet_resnet50_fpn"},
                    format="json")
print(json.dumps({"unknown": [unknown.status_code, unknown.json()],
                  "known": [known.status_code, known.json()],
                  "torch": sorted(k for k in sys.modules if k.split(".")[0] == "torch")[:3]}))
"""


def test_validating_a_task_model_through_the_api_imports_no_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    status, body = seen["unknown"]
    assert status == 400 and "model" in body["error"]["fields"], body
    assert "retinanet_resnet50_fpn" in body["error"]["fields"]["model"][0]
    status, body = seen["known"]  # past the model, refused on the made-up dataset
    assert status in (400, 404) and "model" not in body["error"].get("fields", {}), body
    assert seen["torch"] == []
