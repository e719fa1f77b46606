"""training_runtime.train is pure PyTorch: importing it pulls in no Django or DRF."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_training_package_pulls_in_no_django():
    probe = ("import json, sys, training_runtime.train; "
             "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    roots = set(json.loads(done.stdout))
    assert "torch" in roots
    assert not roots & {"django", "rest_framework", "channels", "evaluation"}
