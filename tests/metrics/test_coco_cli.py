"""`python -m metrics.coco GT.json DT.json`: JSON stats on good input, and on bad
input a one-line message and exit code 2, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.metrics.cocogen import annotation, dataset, detection, image, make_case
from tests.metrics.cocoref import reference

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metrics.coco", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def per_category_ap(output: dict) -> dict[int, float]:
    """Per-category AP from the output, as a list of {category_id, ap} or as a mapping."""
    if "per_category" in output:
        return {int(row["category_id"]): float(row["ap"]) for row in output["per_category"]}
    return {int(k): float(v) for k, v in output["per_category_ap"].items()}


@pytest.fixture
def tiny_scene() -> tuple[dict, list[dict]]:
    gt = dataset([image(1), image(2)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0]),
                                        annotation(2, 2, 1, [5.0, 5.0, 50.0, 40.0])], [1])
    return gt, [detection(1, 1, [11.0, 10.0, 20.0, 20.0], 0.9)]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_cli_prints_the_reference_stats_and_per_category_ap(tmp_path, iou_type):
    gt, dets = make_case(3, iou_type, n_images=8, n_categories=3)
    ref = reference(gt, dets, iou_type)

    done = run_cli(write(tmp_path / "gt.json", gt), write(tmp_path / "dt.json", dets),
                   "--iou-type", iou_type)

    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert len(output["stats"]) == 12
    assert np.allclose(output["stats"], ref.stats, atol=1e-9, rtol=0)
    assert per_category_ap(output) == pytest.approx(ref.per_category_ap, abs=1e-9)


def assert_rejected(done: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, one line on stderr naming the problem, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert any(word.lower() in message.lower() for word in words), message


def test_ground_truth_without_annotations_key_is_rejected(tmp_path, tiny_scene):
    gt, dets = tiny_scene
    del gt["annotations"]

    done = run_cli(write(tmp_path / "gt.json", gt), write(tmp_path / "dt.json", dets))

    assert_rejected(done, "annotations")


def test_detection_on_an_image_not_in_the_ground_truth_is_rejected(tmp_path, tiny_scene):
    gt, dets = tiny_scene
    dets.append(detection(999, 1, [0.0, 0.0, 10.0, 10.0], 0.5))

    done = run_cli(write(tmp_path / "gt.json", gt), write(tmp_path / "dt.json", dets))

    assert_rejected(done, "999")


def test_detection_with_a_negative_width_is_rejected(tmp_path, tiny_scene):
    gt, dets = tiny_scene
    dets.append(detection(1, 1, [50.0, 50.0, -10.0, 10.0], 0.5))

    done = run_cli(write(tmp_path / "gt.json", gt), write(tmp_path / "dt.json", dets))

    assert_rejected(done, "negative", "width")


def test_ground_truth_box_with_a_negative_height_is_rejected(tmp_path, tiny_scene):
    gt, dets = tiny_scene
    gt["annotations"][0]["bbox"] = [10.0, 10.0, 20.0, -5.0]

    done = run_cli(write(tmp_path / "gt.json", gt), write(tmp_path / "dt.json", dets))

    assert_rejected(done, "negative", "height")


def test_a_file_that_is_not_json_is_rejected(tmp_path, tiny_scene):
    gt, _ = tiny_scene

    done = run_cli(write(tmp_path / "gt.json", gt), write(tmp_path / "dt.json", "not json {"))

    assert_rejected(done, "json")


def test_a_missing_file_is_rejected(tmp_path, tiny_scene):
    gt, _ = tiny_scene

    done = run_cli(write(tmp_path / "gt.json", gt), tmp_path / "nowhere.json")

    assert_rejected(done, "nowhere.json")
