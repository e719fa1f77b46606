"""The deployment tools tests/platform needs: kubectl (Debian's) and the .venv-tools venv.

Missing outside CI, the test skips and says why; with CI=true it fails, so CI cannot pass by
skipping the checks.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools" / "bin"


def require(path: Path | str | None, what: str) -> str:
    """The tool's path, or skip (fail in CI) naming how to get it."""
    if path and Path(path).exists():
        return str(path)
    message = f"{what} is missing: {'run `make tools`' if 'venv' in what else 'install it'}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI requires the deployment checks)")
    pytest.skip(message)


def kubectl() -> str:
    return require(shutil.which("kubectl"), "kubectl (Debian package kubectl)")


def tool(name: str) -> str:
    return require(TOOLS / name, f"{name} of .venv-tools (the deployment tools venv)")


def render(overlay: str) -> str:
    """`kubectl kustomize` of one overlay of platform/kubernetes, offline."""
    result = subprocess.run([kubectl(), "kustomize", str(ROOT / "platform" / "kubernetes" /
                                                          "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout
