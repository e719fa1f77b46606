"""The `automl` CLI (client/) against a real `manage.py serve` with its in-process worker: sign
up, upload the digits sample, train a tiny model followed live, read its evaluation, download
it, publish it, predict, read usage; and each error path exits with its documented code.

"""

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from sklearn.datasets import load_digits

from tests.e2e.servers import MANAGE, Processes, clean_env, free_port, manage, wait_for
from tests.tasks.conftest import digits_zip

AUTOML = str(Path(sys.executable).with_name("automl"))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    processes = Processes(tmp)
    port = free_port()
    env = clean_env(DATA_DIR=str(tmp), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", LOG_LEVEL="WARNING", TASK_PROGRESS_INTERVAL_S="0",
                    TASK_DEVICE="cpu")
    manage(env, "migrate", "--noinput")
    manage(env, "seed_specs")
    processes.start("serve", [*MANAGE, "serve", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/api/v1/health/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(healthy, timeout=90, what="manage.py serve to answer", processes=processes)
    yield {"base": base, "env": env, "tmp": tmp, "processes": processes}
    processes.stop_all()


class Cli:
    """Runs `automl` as a user's shell would, with its own saved login."""

    def __init__(self, platform):
        self.platform = platform
        self.env = {**os.environ, "AUTOML_URL": platform["base"],
                    "AUTOML_CONFIG": str(platform["tmp"] / "credentials.json")}
        self.env.pop("AUTOML_TOKEN", None)

    def run(self, *args: str, expect: int = 0, timeout: float = 300
            ) -> subprocess.CompletedProcess:
        done = subprocess.run([AUTOML, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == expect, (
            f"automl {' '.join(args)} exited {done.returncode}, not {expect}\n"
            f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}\n"
            + self.platform["processes"].tails())
        return done

    def json(self, *args: str) -> dict:
        return json.loads(self.run("--json", *args).stdout)


def digit_png() -> bytes:
    pixels = (load_digits().images[7] * 255 / 16).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).resize((32, 32)).convert("RGB").save(png, "PNG")
    return png.getvalue()


def test_from_sign_up_to_a_prediction(platform, tmp_path):
    cli = Cli(platform)
    zipped = tmp_path / "digits.zip"
    zipped.write_bytes(digits_zip(per_label=12))
    image = tmp_path / "digit.png"
    image.write_bytes(digit_png())

    signed = cli.json("signup", "--email", f"{uuid.uuid4().hex[:8]}@example.com",
                      "--password", "a long password", "--tenant", "Acme")
    upload = cli.run("--print", "id", "datasets", "upload", str(zipped), "--project", "Demo",
                     "--wait")
    dataset = upload.stdout.strip()
    assert "uploading 100%" in upload.stderr and "ready" in upload.stderr

    # no money yet: the freeze is refused, exit 6 with the code on stderr
    broke = cli.run("tasks", "create", "--dataset", dataset, "--algorithm", "small_cnn",
                    expect=6)
    assert "insufficient_funds" in broke.stderr
    manage(platform["env"], "billing_adjust", "--tenant", signed["tenant_id"],
           "--amount", "1000000", "--reason", "e2e trial credit")

    trained = cli.run("--json", "tasks", "create", "--dataset", dataset, "--algorithm",
                      "small_cnn", "--epochs", "2", "--batch-size", "8", "--watch",
                      timeout=600)
    task = json.loads(trained.stdout)
    assert (task["state"], task["algorithm"]) == ("succeeded", "small_cnn")
    live = trained.stderr
    assert "epoch 2/2" in live and "loss " in live and "accuracy " in live and "ETA " in live
    assert "succeeded: accuracy" in live

    evaluation = cli.json("evaluations", "show", "--task", task["id"], "--wait")
    assert evaluation["state"] == "succeeded" and "accuracy" in evaluation["metrics"]

    for fmt, magic in (("artifact", b"PK"), ("onnx", None)):
        target = tmp_path / f"model-{fmt}"
        fetched = cli.run("--json", "models", "download", task["model"], "--format", fmt,
                          "-o", str(target))
        assert json.loads(fetched.stdout)["bytes"] == target.stat().st_size > 0
        assert "downloading" in fetched.stderr
        assert magic is None or target.read_bytes().startswith(magic)

    service = cli.json("services", "publish", task["model"], "--name", "digits", "--wait")
    assert service["state"] == "running" and service["key"]
    answer = cli.json("predict", service["id"], str(image))
    assert answer["model"] == task["model"]
    assert {p["label"] for p in answer["predictions"]} <= {"digit-0", "digit-1", "digit-7"}
    with_key = cli.json("--token", "none", "predict", service["id"], str(image),
                        "--key", service["key"])
    assert with_key["predictions"] == answer["predictions"]

    usage = cli.json("billing", "usage", "--group-by", "resource")
    assert f"task:{task['id']}" in {row["key"] for row in usage["results"]}
    table = cli.run("billing", "usage").stdout
    assert "KEY" in table and "total " in table

    # error paths and their exit codes
    assert "not_authenticated" in cli.run("--token", "aml_wrong", "tasks", "list",
                                          expect=3).stderr
    cli.run("tasks", "watch", str(uuid.uuid4()), expect=4)
    not_image = tmp_path / "notes.txt"
    not_image.write_text("not an image")
    refused = cli.run("predict", service["id"], str(not_image), expect=1)
    assert "image" in refused.stderr
    cli.run("tasks", "create", expect=2)  # --dataset is required
