"""The web process validates a task's model from the torch-free catalogue: serving the API
(every URL's views loaded), refusing an unknown model and creating a task never import torch."""

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

for command, options in (("migrate", {"verbosity": 0}), ("seed_specs", {}),
                         ("seed_sample_datasets", {"images": 12})):
    call_command(command, stdout=open(os.devnull, "w"), **options)
get_resolver().url_patterns  # imports every view module, as the first request does
client = APIClient()
body = client.post("/api/v1/auth/signup/", {"email": "me@example.com", "password": "a long "
                   "password here", "tenant": "Acme"}, format="json").json()
client.credentials(HTTP_AUTHORIZATION="Bearer " + body["token"])
call_command("billing_adjust", tenant=body["tenant"]["id"], amount=10**9, reason="test",
             actor="staff:test", stdout=open(os.devnull, "w"))
project = client.post("/api/v1/projects/", {"name": "P"}, format="json").json()["id"]
from billing.models import ComputeSpec
from datasets.models import Dataset
sample = Dataset.objects.unscoped().get(builtin=True, kind="detection")
task = {"project": project, "name": "t", "scenario": "detection", "billing_mode": "postpaid",
        "train_dataset": str(sample.id), "spec": str(ComputeSpec.objects.first().id)}
answers = {case: client.post("/api/v1/tasks/", {**task, "model": model}, format="json")
           for case, model in (("unknown", "yolov8"), ("known", "retinanet_resnet50_fpn"))}
print(json.dumps({**{case: [a.status_code, a.json()] for case, a in answers.items()},
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
    status, body = seen["known"]
    assert status == 201 and body["algorithm"] == "retinanet_resnet50_fpn", body
    assert seen["torch"] == []
