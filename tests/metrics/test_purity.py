"""The metrics library is pure: it imports only the standard library, numpy, pycocotools (mask
encoding) and itself, read from the source; importing it pulls in no Django, DRF, torch or
scikit-learn."""

import subprocess
import sys

from tests.purity import REPO, STDLIB, imports_of_package

HEAVY = ("django", "torch", "torchvision", "rest_framework", "sklearn")
MODULES = sorted(p.stem for p in (REPO / "metrics").glob("*.py") if p.stem != "__init__")
PROBE = (
    "import sys, importlib; "
    f"[importlib.import_module('metrics.' + m) for m in {MODULES!r}]; "
    f"bad = [k for k in sys.modules if k.split('.')[0] in {set(HEAVY)!r}]; "
    "assert not bad, bad"
)
ALLOWED = STDLIB | {"numpy", "pycocotools", "metrics"}


def test_every_metrics_module_imports_no_framework_or_training_library():
    assert {"coco", "classification", "operating_point", "detection_confusion", "tide"} <= set(
        MODULES)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr


def test_no_metrics_module_imports_an_app_or_a_framework_even_inside_a_function():
    found = imports_of_package("metrics")

    assert any(i.name == "pycocotools" for i in found)  # the walk sees function-level imports
    assert [str(i) for i in found if i.root not in ALLOWED] == []
