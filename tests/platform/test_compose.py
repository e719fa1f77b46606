"""platform/compose.yaml, its Dockerfile, Caddyfile and GPU override, checked at the YAML level.

`docker compose config` is not available where the suite runs, so the file is read as YAML and
checked for what has broken deployments before: an image that cannot be pulled, a variable the
env template does not define, the console behind no TLS, every GPU replica on one device.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "platform"
# Images whose publisher stopped publishing them (MinIO's community edition left Docker Hub).
GONE = ("minio/minio", "minio/mc", "bitnami/minio", "quay.io/minio")


def compose() -> dict:
    return yaml.safe_load((PLATFORM / "compose.yaml").read_text())


def template() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (PLATFORM / "env.template").read_text().splitlines()
             if line and not line.startswith("#") and "=" in line)
    return dict(pairs)


def gpu_override(*args: str) -> dict:
    result = subprocess.run([sys.executable, str(PLATFORM / "gpu_workers.py"), *args],
                            capture_output=True, text=True, timeout=30, check=True)
    return yaml.safe_load(result.stdout)


def test_every_image_is_pinned_and_still_published():
    for name, service in compose()["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        assert not image.startswith(GONE), f"{name}: {image} is no longer published"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned"


def test_dockerfile_base_image_is_pinned_and_both_targets_run_as_non_root():
    text = (PLATFORM / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+) AS base$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    finals = {re.match(r"\S+ AS (\S+)", stage).group(1): stage for stage in stages}
    for target in ("slim", "gpu"):
        assert re.search(r"^USER 10001:10001$", finals[target], re.M), target
    assert "HEALTHCHECK" in text and "/livez" in text
    assert stages[-1].startswith("runtime AS slim"), "a plain docker build should give slim"


def test_every_interpolated_variable_is_in_the_env_template():
    text = (PLATFORM / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    used |= set(re.findall(r"\{\$([A-Z0-9_]+)", (PLATFORM / "Caddyfile").read_text()))
    missing = used - set(template()) - {"AUTOML_VERSION"}  # the image tag, set when building
    assert not missing, f"compose or Caddyfile use variables env.template lacks: {missing}"


def test_the_template_names_one_public_host_everywhere():
    env = template()
    host = env["PUBLIC_HOST"]
    assert env["PUBLIC_URL"] == f"https://{host}"
    assert host in env["ALLOWED_HOSTS"].split(",")
    assert env["S3_ENDPOINT_URL"].startswith("http://seaweedfs:")
    assert env["S3_ADDRESSING_STYLE"] == "path"


def test_clients_reach_web_only_through_the_tls_proxy():
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"caddy"}
    assert {port.split(":")[-1] for port in services["caddy"]["ports"]} >= {"443", "80"}
    assert services["caddy"]["networks"] == ["edge"]
    assert "edge" in services["web"]["networks"]
    members = {name for name, service in services.items() if "edge" in service.get("networks", [])}
    assert members == {"caddy", "web"}, "only the proxy may share web's trusted network"
    subnet = compose()["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert services["web"]["environment"]["TRUSTED_PROXIES"] == subnet
    caddyfile = (PLATFORM / "Caddyfile").read_text()
    assert "{$PUBLIC_HOST}" in caddyfile and "name web" in caddyfile and "port 8000" in caddyfile


def test_app_services_wait_for_storage_and_migrations():
    services = compose()["services"]
    for name in ("web", "worker-cpu", "worker-serving", "scheduler", "worker-train-cpu"):
        after = services[name]["depends_on"]
        assert after["storage-init"]["condition"] == "service_completed_successfully", name
        assert after["migrate"]["condition"] == "service_completed_successfully", name
    assert services["storage-init"]["command"] == ["python", "platform/create_bucket.py"]
    assert (PLATFORM / "create_bucket.py").exists()


def test_only_web_keeps_the_images_http_health_check():
    for name, service in compose()["services"].items():
        if service.get("build"):
            disabled = service.get("healthcheck", {}).get("disable", False)
            assert disabled == (name != "web"), name


@pytest.mark.parametrize("args, devices", [
    (["--gpus", "2", "--model", "a100"], {"0": "a100", "1": "a100"}),
    (["--device", "0=a100", "--device", "3=t4"], {"0": "a100", "3": "t4"}),
])
def test_each_gpu_worker_gets_its_own_device(args, devices):
    services = gpu_override(*args)["services"]
    base = compose()["services"]
    seen = {}
    for name, service in services.items():
        (reservation,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert "count" not in reservation
        (device,) = reservation["device_ids"]
        model = service["environment"]["GPU_MODEL"]
        seen[device] = model
        command = service["command"]
        queues = command[command.index("--queues") + 1:command.index("--processes")]
        assert queues == ["gpu", f"gpu-{model}"], name
        assert command[command.index("--threads") + 1] == "1"
        assert service["build"]["target"] == "gpu"
        assert set(service["depends_on"]) <= set(base), "depends on a service compose lacks"
        assert set(service["networks"]) <= set(compose()["networks"])
    assert seen == devices


@pytest.mark.parametrize("args", [["--gpus", "2"], ["--device", "0=a100", "--device", "0=t4"],
                                  ["--gpus", "1", "--model", "A100!"], []])
def test_gpu_workers_refuses_an_ambiguous_request(args):
    result = subprocess.run([sys.executable, str(PLATFORM / "gpu_workers.py"), *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "error" in result.stderr


def test_the_images_install_the_pinned_torch_and_the_telemetry_extra():
    result = subprocess.run([sys.executable, str(PLATFORM / "requirements.py"),
                             str(ROOT / "pyproject.toml")],
                            capture_output=True, text=True, timeout=30, check=True)
    lines = result.stdout.splitlines()
    # deps-slim finds these two lines with grep '^torch==' / '^torchvision==' for the CPU index.
    assert any(re.fullmatch(r"torch==[\d.]+", line) for line in lines), lines
    assert any(re.fullmatch(r"torchvision==[\d.]+", line) for line in lines), lines
    assert any(line.startswith("prometheus-client") for line in lines), "no /metrics in images"
    assert any(line.startswith("Django") for line in lines)
    assert "platform/requirements.py" in (PLATFORM / "Dockerfile").read_text()


def test_the_edge_never_forwards_the_metrics_to_the_internet():
    site = (PLATFORM / "Caddyfile").read_text()
    block = site.index("respond /metrics 404")
    assert block < site.index("reverse_proxy {"), "the metrics route must be answered by Caddy"
