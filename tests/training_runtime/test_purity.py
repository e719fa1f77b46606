"""training_runtime is a pure library: no Django or DRF; the readers need no torch either."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_roots(*modules):
    probe = ("import importlib, sys, json; "
             f"[importlib.import_module(m) for m in {list(modules)!r}]; "
             "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(__import__("json").loads(done.stdout))


def test_importing_the_readers_pulls_in_no_django_drf_or_torch():
    roots = imported_roots("training_runtime", "training_runtime.data")

    assert not roots & {"django", "rest_framework", "torch", "torchvision", "channels"}


def test_importing_the_torch_parts_pulls_in_no_django_or_drf():
    roots = imported_roots("training_runtime.data.transforms",
                           "training_runtime.data.torch_dataset")

    assert "torch" in roots
    assert not roots & {"django", "rest_framework", "channels"}


def test_no_module_mentions_django():
    for path in (REPO / "training_runtime").rglob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
        assert "rest_framework" not in text, path
