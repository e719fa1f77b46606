"""Evaluating a detector through the API: numbers equal metrics on the same
predictions at the run's operating point and at moved ones; ids are the uploaded COCO file's."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from metrics import coco, detection_confusion, operating_point
from tests.datasets.zips import make_zip
from tests.evaluation_runs.conftest import evaluated_through_api, stored_model, upload_ready

LABELS = ["cat", "dog"]
CATEGORY_IDS = {"cat": 3, "dog": 7}  # not 1..n: the report must keep the file's ids
IMAGE_IDS = [11, 12, 13, 14]
OPTIONS = {"min_size": 96, "max_size": 128, "box_detections_per_img": 20,
           "rpn_pre_nms_top_n_test": 50, "rpn_post_nms_top_n_test": 6}


def noise(seed):
    return np.random.default_rng(seed).integers(0, 256, size=(96, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def detector_artifact(tmp_path_factory):
    from training_runtime import models
    from training_runtime.export.artifact import export_artifact

    torch.manual_seed(0)
    spec = models.get("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")
    model = models.build(spec, num_classes=2, **OPTIONS)
    bias = model.roi_heads.box_predictor.cls_score.bias
    with torch.no_grad():  # an untrained detector scores all alike; give each label its own
        bias.copy_(torch.tensor([-1.0, 0.5, 0.2]))
    path = tmp_path_factory.mktemp("det") / "model"
    return export_artifact(model.eval(), path, scenario="detection", model_name=spec.name,
                           labels=LABELS, input_size=(96, 128), normalization=None, metrics={},
                           build_options=OPTIONS)


def ground_truth(artifact):
    """Truth made from the model's own boxes (so some match), one shifted (IoU between 0.5 and
    0.75), one relabelled (a confusion) and one where nothing was found (a miss)."""
    from training_runtime.predict import Predictor

    predictions = Predictor.load(artifact).predict([noise(s) for s in range(4)], min_score=0.0)
    annotations = []
    for n, (image_id, found) in enumerate(zip(IMAGE_IDS, predictions, strict=True)):
        for item in found[:2]:
            x, y, w, h = (round(v) for v in item["bbox"])
            if w < 4 or h < 4:
                continue
            label = item["label"]
            if n == 0 and not annotations:
                x = min(x + w // 4, 128 - w)
            if n == 1:
                label = "dog" if label == "cat" else "cat"
            annotations.append({"image_id": image_id, "category_id": CATEGORY_IDS[label],
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    annotations.append({"image_id": 14, "category_id": 7, "bbox": [0, 0, 5, 5], "area": 25,
                        "iscrowd": 0})
    for k, ann in enumerate(annotations, start=1):
        ann["id"] = k
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": 128, "height": 96}
                       for i in IMAGE_IDS],
            "categories": [{"id": CATEGORY_IDS[n], "name": n} for n in LABELS],
            "annotations": annotations}


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def evaluated(api, funded, project_of_a, detector_artifact, cpu_spec):
    gt = ground_truth(detector_artifact)
    files = {f"images/{i}.png": png(noise(s)) for s, i in enumerate(IMAGE_IDS)}
    files["annotations.json"] = json.dumps(gt).encode()
    dataset = upload_ready(api, funded, project_of_a["id"], make_zip(files), kind="detection",
                           fmt="coco", name="boxes")
    model = stored_model(funded.tenant_id, project_of_a["id"], detector_artifact, "detection",
                         "fasterrcnn_mobilenet_v3_large_320_fpn", LABELS)
    body, dt = evaluated_through_api(api, funded, model, dataset["id"], score_threshold=0.3)
    return body, gt, dt


def test_report_equals_the_engine_at_the_run_and_at_moved_operating_points(api, funded,
                                                                           evaluated):
    body, gt, dt = evaluated
    assert {d["image_id"] for d in dt} <= set(IMAGE_IDS)
    assert {d["category_id"] for d in dt} <= set(CATEGORY_IDS.values())
    assert all(d["file_name"] == f"{d['image_id']}.png" for d in dt)
    result = coco.evaluate(gt, dt, "bbox")
    metrics = body["metrics"]
    assert (metrics["map"], metrics["map50"], metrics["map75"]) == pytest.approx(
        tuple(result.stats[:3]))
    assert metrics["recall"] > 0, "the test must exercise matches"
    strict = operating_point.operating_point(result, 0.75, 0.3).overall
    assert strict.recall < metrics["recall"], "the shifted box must matter at IoU 0.75"
    url = f"/api/v1/evaluations/{body['id']}/metrics/"
    for iou, score in ((0.5, 0.3), (0.75, 0.3), (0.5, 0.0), (0.6, 0.45)):
        moved = api.as_(funded).get(url, {"iou": iou, "score_threshold": score}).json()
        want = operating_point.operating_point(result, iou, score)
        assert (moved["precision"], moved["recall"], moved["f1"]) == pytest.approx(
            (want.overall.precision, want.overall.recall, want.overall.f1)), (iou, score)
        assert [(r["label"], r["tp"], r["fp"], r["fn"]) for r in moved["per_label"]] == [
            (LABELS[k], f.tp, f.fp, f.fn) for k, f in enumerate(want.per_label)]
    detail = api.as_(funded).get(f"/api/v1/evaluations/{body['id']}/",
                                 {"iou": 0.75, "score_threshold": 0.3}).json()
    assert detail["metrics"]["iou"] == 0.75
    assert body["summary"]["image_count"] == 4
    assert body["summary"]["badcase_count"] == len(detection_confusion.badcases(result, 0.5, 0.3))


def test_badcases_and_confusion_are_the_engines(api, funded, evaluated):
    body, gt, dt = evaluated
    result = coco.evaluate(gt, dt, "bbox")
    url = f"/api/v1/evaluations/{body['id']}/"
    names = {3: "cat", 7: "dog"}
    for query in ({}, {"kind": "missed"}, {"kind": "false_positive"},
                  {"true_label": "dog"}, {"predicted_label": "cat", "iou": 0.75}):
        iou = query.get("iou", 0.5)
        filters = {k: CATEGORY_IDS[v] if k.endswith("label") else v for k, v in query.items()
                   if k != "iou"}
        want = detection_confusion.badcases(result, iou, 0.3, **filters)
        got = api.as_(funded).get(url + "badcases/", {**query, "limit": 500}).json()["results"]
        assert [(b["image_id"], b["file_name"], len(b["false_positives"]), len(b["missed"]))
                for b in got] == [(w["image_id"], f"{w['image_id']}.png",
                                   len(w["false_positives"]), len(w["missed"])) for w in want]
    assert api.as_(funded).get(url + "badcases/", {"true_label": "horse"}).json()[
        "results"] == []
    confusion = api.as_(funded).get(url + "confusion/").json()
    assert confusion == detection_confusion.detection_confusion(result, 0.5, 0.3,
                                                                names=names).as_api()
    assert confusion["labels"] == LABELS
