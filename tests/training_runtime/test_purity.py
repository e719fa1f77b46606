"""training_runtime is a pure library: no Django, DRF or app, even in a function-level import;
the readers and the algorithm catalogue need no torch either."""

import subprocess
import sys

from tests.purity import (
    FRAMEWORKS,
    REPO,
    STDLIB,
    imports_in,
    imports_of_package,
    project_packages,
)


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


# --- read from the source: function-level imports count too ----------------------------------

LIBRARIES = {"training_runtime", "metrics"}  # the two pure libraries may use each other


def test_no_module_imports_django_or_an_app_even_inside_a_function():
    apps = project_packages() - LIBRARIES
    found = imports_of_package("training_runtime")

    assert any(i.name == "metrics.coco" for i in found)  # the walk sees the metrics import
    assert [str(i) for i in found if i.root in FRAMEWORKS | apps] == []


def test_the_algorithm_catalogue_is_standard_library_data():
    found = imports_in(REPO / "training_runtime" / "catalogue.py")

    assert found and [str(i) for i in found if i.root not in STDLIB] == []
    assert not imported_roots("training_runtime.catalogue") & {"torch", "numpy", "django"}


def test_importing_every_module_pulls_in_no_django_and_no_app():
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for p in (REPO / "training_runtime").rglob("*.py"))
    roots = imported_roots(*modules)

    assert "metrics" in roots  # the training loop's COCO mAP, imported at module level
    assert not roots & (FRAMEWORKS | (project_packages() - LIBRARIES))
