"""The metrics library is pure: importing it pulls in no Django, DRF, torch or scikit-learn."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("django", "torch", "torchvision", "rest_framework", "sklearn")
MODULES = sorted(p.stem for p in (REPO / "evaluation" / "metrics").glob("*.py")
                 if p.stem != "__init__")
PROBE = (
    "import sys, importlib; "
    f"[importlib.import_module('evaluation.metrics.' + m) for m in {MODULES!r}]; "
    f"bad = [k for k in sys.modules if k.split('.')[0] in {set(HEAVY)!r}]; "
    "assert not bad, bad"
)


def test_every_metrics_module_imports_no_framework_or_training_library():
    assert {"coco", "classification", "operating_point", "detection_confusion", "tide"} <= set(
        MODULES)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
