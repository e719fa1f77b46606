"""The import graph of the platform's own packages: cycles and imports past a front door.

Run: `python bench/import_graph.py [root]` (pure: reads the source with `ast`, imports
nothing; `root` defaults to this checkout, so that another tree, `git archive` of an older
commit, can be measured the same way).

Every import statement counts, the ones inside functions too (a function-level import still
ties the two modules together; it only hides the tie from the module loader), except those
under `if TYPE_CHECKING:`, which never run (import-linter's `exclude_type_checking_imports`
reads the same graph). Printed:
- modules, import edges, and how many imports sit inside functions;
- cycles: the strongly connected components of the module graph with more than one module
  (a module importing its own package's `__init__` is not counted);
- imports past a front door: a module of one app importing a module of another app other
  than its `api`, `events` or `contracts`. The foundations (`core`, `eventlog`) and the pure
  libraries are meant to be imported and are not apps; `config` wires the views into URLs and
  the worker, so its own imports are not counted either. `accounts` is listed apart: every
  app leans on its tenancy and permissions (DESIGN.md), through modules other than `api`.
"""

import ast
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The packages measured: import-linter's root_packages in pyproject.toml, or, in a tree from
# before the contracts, the ones it had then.
PACKAGES = ("accounts", "billing", "core", "config", "console", "datasets", "eventlog",
            "evaluation", "serving", "tasklogs", "tasks", "training_runtime")
# Imported by any app through any module: the plumbing, the event store and the pure libraries
# (`evaluation.metrics` is not one of them: importing it runs the `evaluation` app's package).
FOUNDATIONS = ("core", "config", "eventlog", "training_runtime", "metrics", "algorithms")
FRONT_DOORS = ("api", "events", "contracts")


def packages(root: Path = ROOT) -> tuple[str, ...]:
    """The project's own top-level packages in the tree at `root`."""
    with (root / "pyproject.toml").open("rb") as file:
        config = tomllib.load(file).get("tool", {}).get("importlinter", {})
    return tuple(config.get("root_packages", PACKAGES))


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages (name -> file), migrations left out."""
    found = {}
    for package in packages(root):
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies in; None when outside the project."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]
               ) -> list[tuple[str | None, bool, int]]:
    """(imported project module or None when outside the project, inside a function, line)
    for each import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for branch in child.orelse:
                    visit(ast.Module(body=[branch], type_ignores=[]), nested)
                continue
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                         | ast.Lambda)
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports the submodule when there is one.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                           else base for alias in child.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved != name:
                    found.append((resolved, nested, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(components, key=lambda c: (-len(c), c))


def _app(module: str) -> str:
    for foundation in FOUNDATIONS:
        if module == foundation or module.startswith(foundation + "."):
            return foundation
    return module.split(".")[0]


def _is_front_door(module: str) -> bool:
    app = _app(module)
    if app in FOUNDATIONS:
        return True
    rest = module[len(app) + 1:].split(".")[0] if module != app else ""
    return rest in FRONT_DOORS


def measure(root: Path = ROOT) -> dict[str, object]:
    """The figures: modules, edges, function-level imports, cycles, imports past front doors."""
    modules = module_files(root)
    graph: dict[str, set[str]] = defaultdict(set)
    nested = nested_all = 0
    past: list[tuple[str, str, int]] = []
    for name, path in modules.items():
        graph.setdefault(name, set())
        for target, inside, line in imports_of(name, path, modules):
            nested_all += inside
            if target is None:
                continue
            nested += inside
            # A package's __init__ runs before its modules anyway: not a cycle worth counting.
            if not name.startswith(target + "."):
                graph[name].add(target)
            if (_app(name) not in ("config", _app(target))
                    and not _is_front_door(target)):
                past.append((name, target, line))
    return {"modules": len(modules), "edges": sum(len(v) for v in graph.values()),
            "function_level_imports": nested, "function_level_imports_all": nested_all,
            "cycles": strongly_connected(graph),
            "past_front_door": past}


def main() -> None:
    """Print the figures."""
    figures = measure(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
    cycles = figures["cycles"]
    past = figures["past_front_door"]
    print(f"modules {figures['modules']}, import edges {figures['edges']}")
    print(f"function-level imports: {figures['function_level_imports']} of project modules, "
          f"{figures['function_level_imports_all']} in all")
    print(f"cycles (strongly connected components): {len(cycles)}")
    for component in cycles:
        print(f"  {len(component)} modules: {', '.join(component)}")
    besides = sum(1 for _, b, _ in past if _app(b) != "accounts")
    print(f"imports past a front door: {len(past)} ({besides} not into accounts)")
    pairs = Counter((_app(a), _app(b)) for a, b, _ in past)
    for (source, target), count in sorted(pairs.items()):
        targets = sorted({b for a, b, _ in past if _app(a) == source and _app(b) == target})
        print(f"  {source} -> {target}: {count} ({', '.join(targets)})")


if __name__ == "__main__":
    main()
