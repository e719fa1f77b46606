"""Print the image's requirements from pyproject.toml: the dependencies and the `telemetry` extra.

    python platform/requirements.py pyproject.toml > requirements.txt

The Dockerfile runs it so the images cannot drift from pyproject.toml; the telemetry extra
(metrics, JSON logs, traces, Sentry) is optional for `make run` but belongs in production.
Standard library only: it runs before anything is installed.
"""

import sys
import tomllib
from pathlib import Path

EXTRAS = ("telemetry",)


def requirements(pyproject: Path) -> list[str]:
    """The requirement lines an image installs."""
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project.get("optional-dependencies", {}).get(extra, [])
    return lines


if __name__ == "__main__":
    sys.stdout.write("\n".join(requirements(Path(sys.argv[1]))) + "\n")
