"""Validate rendered Kubernetes manifests against the API schemas, offline (kubernetes-validate).

Run with the tool venv's Python (.venv-tools, made by `make tools`), not the project's:
    .venv-tools/bin/python tests/platform/k8s_validate.py 1.32.0 rendered.yaml
Prints one JSON line: {"valid": [...], "skipped": {kind: reason}, "errors": [...]}. Custom
resources the bundled schemas do not carry are skipped by kind, each with its reason, and any
other missing schema is an error.
"""

import json
import sys

import kubernetes_validate
import yaml

# Kinds that come from CRDs: kubernetes-validate ships the core API's schemas only.
SKIPPED_KINDS = {
    "ScaledObject": "KEDA CRD (keda.sh/v1alpha1): no schema offline; its fields are checked by "
                    "tests/platform/test_kubernetes.py",
}


def main(version: str, path: str) -> None:
    """Validate every document of `path` against Kubernetes `version` (strict)."""
    report = {"valid": [], "skipped": {}, "errors": []}
    with open(path) as handle:
        for doc in yaml.safe_load_all(handle):
            if not doc:
                continue
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            if doc.get("kind") in SKIPPED_KINDS:
                report["skipped"][doc["kind"]] = SKIPPED_KINDS[doc["kind"]]
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                report["valid"].append(name)
            except kubernetes_validate.ValidationError as exc:
                report["errors"].append(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                report["errors"].append(f"{name}: no schema: {exc}")
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
