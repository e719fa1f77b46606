"""Print platform/env.template with every placeholder secret replaced by a generated one.

    python3 platform/make_env.py > platform/.env
    python3 platform/make_env.py --template platform/kubernetes/base/secrets.env > secrets.env

Each distinct placeholder (`change-me-...`) gets one random value, so a password that appears
twice (POSTGRES_PASSWORD and inside DATABASE_URL) stays the same in both places. Values are
URL-safe (they sit inside connection URLs) and hold no `$` (Compose would interpolate it).
Standard library only: it runs before anything is installed.
"""

import argparse
import re
import secrets
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "env.template"
PLACEHOLDER = re.compile(r"change-me[-a-z0-9]*")


def filled(template: str) -> str:
    """The template's text with each placeholder replaced by its own random secret."""
    generated: dict[str, str] = {}

    def secret(match: re.Match) -> str:
        return generated.setdefault(match.group(0), secrets.token_urlsafe(48))  # 64 characters

    lines = []
    for line in template.splitlines(keepends=True):
        # Comments mention the placeholder pattern; only values are filled in.
        lines.append(line if line.lstrip().startswith("#") else PLACEHOLDER.sub(secret, line))
    return "".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Fill an env template's placeholder secrets.")
    parser.add_argument("--template", type=Path, default=TEMPLATE,
                        help="env-style file to fill (default: platform/env.template)")
    sys.stdout.write(filled(parser.parse_args().template.read_text()))
