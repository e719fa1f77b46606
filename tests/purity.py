"""What the pure libraries import, read from the source (`ast`), function-level imports
included: a lazy import is still a dependency, only hidden from an import-time probe."""

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = frozenset({"django", "rest_framework", "channels", "dramatiq", "psycopg", "redis",
                        "daphne", "uvicorn", "drf_spectacular", "boto3", "stripe"})
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


@dataclass(frozen=True)
class Import:
    """One imported module name (absolute), where it is written."""

    name: str
    path: Path
    line: int

    @property
    def root(self) -> str:
        """The top-level package of the imported name."""
        return self.name.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line} imports {self.name}"


def project_packages() -> frozenset[str]:
    """The repository's own top-level packages (apps, config, core, the libraries)."""
    return frozenset(p.parent.name for p in REPO.glob("*/__init__.py")) | {"config", "manage"}


def _package_of(path: Path) -> str:
    """The dotted package a module file lives in, for relative imports."""
    return ".".join(path.parent.relative_to(REPO).parts)


def imports_in(path: Path) -> list[Import]:
    """Every module `path` imports, at any depth of its code, relative imports made absolute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, path, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = _package_of(path).split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append(Import(base, path, node.lineno))
    return found


def imports_of_package(package: str) -> list[Import]:
    """Every import of every module under the top-level directory `package`."""
    return [found for path in sorted((REPO / package).rglob("*.py"))
            for found in imports_in(path)]
