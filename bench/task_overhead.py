"""Platform overhead of a training task: API -> queue -> worker -> events, against run_job.

The same small CNN trains on the same digits dataset (scikit-learn's load_digits, 32x32 PNGs,
one folder per digit) with the same hyperparameters, twice per round:
- platform: POST /api/v1/tasks/ through DRF, the in-process dramatiq worker claims the task,
  materializes the dataset, trains with progress/epoch events, heartbeats, log capture,
  checkpoint copies to storage, exports and uploads the artifact, settles billing; timed from
  the POST until the task reads `succeeded`;
- direct: `training_runtime.pipeline.run_job` on the same extracted dataset (the anchor).
Rounds alternate; medians are reported. Embedded defaults (SQLite, stub broker, local disk)
in a temporary DATA_DIR.

Goal: overhead <= 5 % of training time.
Usage: .venv/bin/python bench/task_overhead.py [--per-label 60] [--epochs 8] [--rounds 3]
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = tempfile.mkdtemp(prefix="bench-task-")
os.environ.update(DJANGO_SETTINGS_MODULE="config.settings.local", DATA_DIR=DATA_DIR,
                  LOG_LEVEL="WARNING", DATABASE_URL=f"sqlite:///{DATA_DIR}/bench.sqlite3")
for name in ("REDIS_URL", "DRAMATIQ_BROKER_URL", "S3_BUCKET"):
    os.environ.pop(name, None)

import django  # noqa: E402

django.setup()

import dramatiq  # noqa: E402
import numpy as np  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from PIL import Image  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from bench.common import wait  # noqa: E402
from billing import wallet  # noqa: E402
from billing.models import ComputeSpec  # noqa: E402
from core.actors import discover  # noqa: E402

BATCH, LR = 32, 0.003


def digits_zip(per_label: int) -> bytes:
    digits = load_digits()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for label in range(10):
            for i in np.flatnonzero(digits.target == label)[:per_label]:
                png = io.BytesIO()
                pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
                Image.fromarray(pixels).resize((32, 32)).convert("RGB").save(png, "PNG")
                archive.writestr(f"{label}/{i}.png", png.getvalue())
    return out.getvalue()




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    discover()
    worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=1)
    worker.start()
    client = APIClient()
    account = client.post("/api/v1/auth/signup/", {"email": "bench@example.com",
                                                   "password": "a long bench password",
                                                   "tenant": "Bench"}, format="json").json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {account['token']}")
    tenant_id = account["tenant"]["id"]
    wallet.adjust(tenant_id, 10_000_000, "bench funds", "staff:bench")
    spec = ComputeSpec.objects.create(name="bench-cpu", kind="cpu", cpu_cores=2, memory_gib=4,
                                      price_per_hour=100)
    project = client.post("/api/v1/projects/", {"name": "bench"}, format="json").json()
    dataset = client.post("/api/v1/datasets/", {
        "project": project["id"], "name": "digits", "kind": "classification",
        "format": "folders", "file": SimpleUploadedFile("d.zip", digits_zip(args.per_label))},
        format="multipart").json()
    wait(lambda: client.get(f"/api/v1/datasets/{dataset['id']}/").json()["state"] == "ready",
         what="the dataset to be ready", every=0.02)

    from datasets import api as datasets
    from tasks.models import Task
    from training_runtime.pipeline import TrainingJob, run_job

    ref = datasets.get_unscoped(dataset["id"])

    def platform() -> float:
        started = time.perf_counter()
        task = client.post("/api/v1/tasks/", {
            "project": project["id"], "name": "bench", "scenario": "classification",
            "model": "small_cnn", "train_dataset": dataset["id"], "epochs": args.epochs,
            "learning_rate": LR, "batch_size": BATCH, "warmup_epochs": 0,
            "billing_mode": "postpaid", "spec": str(spec.id)}, format="json").json()
        # A cheap poll (one indexed read every 50 ms): the API client would compete for the CPU.
        rows = Task.objects.unscoped().filter(id=task["id"], state__in=(
            "succeeded", "failed", "stopped")).values_list("state", flat=True)
        state = wait(lambda: rows.first(), every=0.05)
        assert state == "succeeded", state
        return time.perf_counter() - started

    def direct(n: int) -> float:
        with datasets.materialize(ref) as root:
            job = TrainingJob(scenario="classification", model_name="small_cnn",
                              train_root=root, data_format="folders",
                              work_dir=Path(DATA_DIR) / f"direct-{n}", epochs=args.epochs,
                              lr=LR, batch_size=BATCH, warmup_epochs=0, max_duration_s=3600)
            started = time.perf_counter()
            run_job(job)
            return time.perf_counter() - started

    platform_s, direct_s = [], []
    direct(-1)  # warm-up: imports, first extraction
    for n in range(args.rounds):
        platform_s.append(platform())
        direct_s.append(direct(n))
        print(f"round {n + 1}: platform {platform_s[-1]:.2f} s, direct {direct_s[-1]:.2f} s")
    worker.stop()
    p, d = statistics.median(platform_s), statistics.median(direct_s)
    print(f"images {10 * args.per_label}, epochs {args.epochs}, batch {BATCH}")
    print(f"platform path {p:.2f} s vs run_job {d:.2f} s (anchor, same run): "
          f"{p / d:.3f}x, overhead {100 * (p / d - 1):+.1f} % (goal <= 5 %)")


if __name__ == "__main__":
    main()
