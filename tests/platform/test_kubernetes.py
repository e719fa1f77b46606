"""platform/kubernetes renders offline, validates against the Kubernetes schemas, and holds the
rules a cluster deployment relies on (probes, one scheduler, migrations first, GPUs per model,
KEDA per worker queue, restricted pods). Also checkov over the manifests and the Dockerfile.
"""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from billing.catalogue import DEFAULT_SPECS
from tests.platform.tools import ROOT, render, tool

OVERLAYS = ["dev", "production"]
KUBERNETES_VERSION = "1.32.0"  # the oldest release the manifests target (Debian's kubectl)
VALIDATE = ROOT / "tests" / "platform" / "k8s_validate.py"


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory) -> tuple[str, list[dict]]:
    text = render(request.param)
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(text)
    return str(path), [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs, kind):
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod(deployment):
    return deployment["spec"]["template"]["spec"]


def validate(path: str) -> dict:
    result = subprocess.run([tool("python"), str(VALIDATE), KUBERNETES_VERSION, path],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_overlay_validates_against_the_kubernetes_schemas(rendered):
    path, docs = rendered
    report = validate(path)
    assert report["errors"] == []
    assert set(report["skipped"]) == {"ScaledObject"}, report["skipped"]
    assert len(report["valid"]) == len(docs) - len(of_kind(docs, "ScaledObject"))


def test_the_schema_check_rejects_a_broken_manifest(tmp_path):
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
              "spec": {"replica": 1, "selector": {}, "template": {}}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert any("replica" in error for error in validate(str(path))["errors"])


def test_web_is_probed_scaled_and_protected(rendered):
    _, docs = rendered
    web = of_kind(docs, "Deployment")["automl-web"]
    (container,) = pod(web)["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8000"
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "automl-web"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    ingress = of_kind(docs, "Ingress")["automl"]["metadata"]["annotations"]
    assert int(ingress["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


def test_one_scheduler_replaced_not_rolled(rendered):
    _, docs = rendered
    scheduler = of_kind(docs, "Deployment")["automl-scheduler"]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    assert "automl-scheduler" not in of_kind(docs, "ScaledObject")
    assert "automl-scheduler" not in of_kind(docs, "HorizontalPodAutoscaler")


def test_migrations_run_once_and_everything_waits_for_them(rendered):
    _, docs = rendered
    (job,) = of_kind(docs, "Job").values()
    assert "migrate --noinput" in " ".join(pod(job)["containers"][0]["command"])
    for name, deployment in of_kind(docs, "Deployment").items():
        (init,) = pod(deployment)["initContainers"]
        assert "migrate --check" in " ".join(init["command"]), name


def test_every_pod_is_restricted_and_bounded(rendered):
    _, docs = rendered
    for name, workload in {**of_kind(docs, "Deployment"), **of_kind(docs, "Job")}.items():
        spec = pod(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert ":" in container["image"] and not container["image"].endswith(":latest")


def test_each_worker_scales_on_its_queues_and_has_a_disruption_budget(rendered):
    _, docs = rendered
    scaled = {doc["spec"]["scaleTargetRef"]["name"]: doc
              for doc in of_kind(docs, "ScaledObject").values()}
    budgets = {doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
               for doc in of_kind(docs, "PodDisruptionBudget").values()}
    for name, deployment in of_kind(docs, "Deployment").items():
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        if not component.startswith("worker"):
            continue
        command = pod(deployment)["containers"][0]["command"]
        queues = command[command.index("--queues") + 1:command.index("--processes")]
        triggers = scaled[name]["spec"]["triggers"]
        assert {t["metadata"]["queueName"] for t in triggers} == set(queues), name
        for trigger in triggers:
            assert trigger["type"] == "rabbitmq"
            # Counts unacknowledged (running) jobs too, so a busy worker is not scaled away.
            assert trigger["metadata"]["protocol"] == "http"
        assert component in budgets, name


def test_a_gpu_deployment_per_gpu_spec_of_the_catalogue(rendered):
    _, docs = rendered
    deployments = of_kind(docs, "Deployment")
    models = {spec["name"].split("-")[1] for spec in DEFAULT_SPECS if spec["kind"] == "gpu"}
    assert models == {"t4", "a100"}
    for model in models:
        spec = pod(deployments[f"automl-worker-gpu-{model}"])
        (container,) = spec["containers"]
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert f"gpu-{model}" in container["command"]
        assert "nvidia.com/gpu.product" in spec["nodeSelector"]
        # A running attempt writes its checkpoint on SIGTERM before it is killed.
        assert spec["terminationGracePeriodSeconds"] >= 120
        assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in spec["volumes"])


def test_config_and_secret_are_generated_and_the_secret_ships_placeholders_only(rendered):
    _, docs = rendered
    (config,) = of_kind(docs, "ConfigMap").values()
    (secret,) = of_kind(docs, "Secret").values()
    assert config["metadata"]["name"].startswith("automl-config-")
    assert config["data"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    import base64

    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    for name in ("SECRET_KEY", "DATABASE_URL", "DRAMATIQ_BROKER_URL", "AWS_SECRET_ACCESS_KEY"):
        assert "change-me" in values[name], name


def checkov(*args: str) -> dict:
    result = subprocess.run([tool("checkov"), *args, "--output", "json", "--compact",
                             "--skip-download"], capture_output=True, text=True, timeout=600)
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def failures(report: dict) -> list[str]:
    return [f"{c['check_id']} {c['resource']} {c.get('file_path')}"
            for c in report.get("results", {}).get("failed_checks", [])]


def test_checkov_finds_nothing_in_the_rendered_manifests(tmp_path):
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(render(overlay))
    report = checkov("--directory", str(tmp_path), "--framework", "kubernetes")
    assert report["summary"]["passed"] > 0
    assert failures(report) == []
    for skipped in report["results"]["skipped_checks"]:
        comment = skipped.get("check_result", {}).get("suppress_comment", "")
        assert len(comment) > 20, f"{skipped['check_id']} skipped without a reason"


def test_checkov_finds_nothing_in_the_dockerfile():
    report = checkov("--file", str(ROOT / "platform" / "Dockerfile"), "--framework", "dockerfile")
    assert report["summary"]["passed"] > 0
    assert failures(report) == []


def test_checkov_fails_a_manifest_that_breaks_the_rules(tmp_path):
    """The scan can fail: a root, writable, unbounded pod is reported."""
    loose = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "loose", "namespace": "automl"},
             "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                 "metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "c", "image": "x:latest"}]}}}}
    (tmp_path / "loose.yaml").write_text(yaml.safe_dump(loose))
    found = failures(checkov("--directory", str(tmp_path), "--framework", "kubernetes"))
    assert any(line.startswith("CKV_K8S_22 ") for line in found), found  # read-only root fs


def test_manifest_sources_are_files_of_this_repository():
    base = ROOT / "platform" / "kubernetes" / "base"
    listed = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in Path(base).glob("*.yaml")
                                    if p.name != "kustomization.yaml")


def test_long_running_workers_are_never_scaled_in_while_busy(rendered):
    """The HPA picks the pod to stop: for service instances and training attempts, scale-in
    waits until nothing is left on the queue (KEDA's own scale to zero)."""
    _, docs = rendered
    for name, scaled in of_kind(docs, "ScaledObject").items():
        behavior = scaled["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        disabled = behavior.get("behavior", {}).get("scaleDown", {}).get("selectPolicy")
        assert (disabled == "Disabled") == (name != "automl-worker-cpu"), name
