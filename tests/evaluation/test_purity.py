"""The metrics library is pure: importing it pulls in no Django, DRF, torch or scikit-learn."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("django", "torch", "torchvision", "rest_framework", "sklearn")
PROBE = (
    "import sys, evaluation.metrics.coco; "
    f"bad = [k for k in sys.modules if k.split('.')[0] in {set(HEAVY)!r}]; "
    "assert not bad, bad"
)


def test_coco_metrics_import_no_framework_or_training_library():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
