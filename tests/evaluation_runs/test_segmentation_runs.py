"""Evaluating an instance-segmentation model through the API: boxes and masks are reported
apart (metrics' "mask", `?iou_type=segm`), each equal to metrics and to pycocotools
on the same predictions; a box that matches while its mask does not is a mask error only."""

import copy
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evaluation import reports, results
from evaluation.actors import run_evaluation
from metrics import coco, detection_confusion, operating_point
from tests.datasets.zips import make_zip
from tests.evaluation_runs.conftest import evaluated_through_api, stored_model, upload_ready

LABELS = ["cell", "nucleus"]
CATEGORY_IDS = {"cell": 4, "nucleus": 9}
IMAGE_IDS = [21, 22, 23, 24]
HEIGHT, WIDTH = 64, 96
SCORE = 0.1
MODEL = "maskrcnn_resnet50_fpn"
OPTIONS = {"min_size": 64, "max_size": 96, "box_detections_per_img": 10,
           "rpn_pre_nms_top_n_test": 50, "rpn_post_nms_top_n_test": 6}


def noise(seed):
    return np.random.default_rng(seed).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def rle_of(segmentation, height=HEIGHT, width=WIDTH):
    """pycocotools' RLE of polygons or an RLE (compressed or not)."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(copy.deepcopy(segmentation), height,
                                                       width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(copy.deepcopy(segmentation), height, width)
    return {"size": segmentation["size"], "counts": segmentation["counts"].encode()}


def rectangle(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


@pytest.fixture(scope="module")
def segmenter_artifact(tmp_path_factory):
    from training_runtime import models
    from training_runtime.export.artifact import export_artifact

    torch.manual_seed(0)
    model = models.build(models.get("segmentation", MODEL), num_classes=2, **OPTIONS)
    path = tmp_path_factory.mktemp("seg") / "model"
    return export_artifact(model.eval(), path, scenario="segmentation", model_name=MODEL,
                           labels=LABELS, input_size=(HEIGHT, WIDTH), normalization=None,
                           metrics={}, build_options=OPTIONS)


def ground_truth(artifact):
    """Polygons and RLE made from the model's own output, so that some objects match:
    a rectangle around a detection whose mask fills under half its box (a box match and a mask
    miss), the model's own mask as RLE (a mask match), a relabelled rectangle (a confusion),
    and a triangle where nothing was found (missed either way)."""
    from training_runtime.predict import Predictor

    found = Predictor.load(artifact).predict([noise(s) for s in range(4)], min_score=SCORE)
    annotations = []

    def add(image_id, label, segmentation, bbox):
        area = float(mask_utils.area(rle_of(segmentation)))
        annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                            "category_id": CATEGORY_IDS[label], "bbox": bbox, "area": area,
                            "iscrowd": 0, "segmentation": segmentation})

    def fill(item):
        _x, _y, w, h = item["bbox"]
        return float(mask_utils.area(rle_of(item["mask"]))) / max(w * h, 1e-9)

    def box(item):
        return [round(v, 2) for v in item["bbox"]]

    loose = [(n, item) for n, items in enumerate(found[:2]) for item in items
             if fill(item) < 0.4 and item["bbox"][2] * item["bbox"][3] >= 16]
    assert loose, "the seed must give a detection whose mask fills under half its box"
    n, item = loose[0]
    add(IMAGE_IDS[n], item["label"], rectangle(*box(item)), box(item))
    solid = [(n, item) for n, items in enumerate(found[:3]) for item in items
             if mask_utils.area(rle_of(item["mask"])) >= 16 and item is not loose[0][1]]
    assert solid, "the seed must give a detection with a mask of a few pixels"
    n, item = solid[0]
    add(IMAGE_IDS[n], item["label"], item["mask"],
        [float(v) for v in mask_utils.toBbox(rle_of(item["mask"]))])
    if found[2]:
        item = found[2][0]
        other = "nucleus" if item["label"] == "cell" else "cell"
        add(IMAGE_IDS[2], other, rectangle(*box(item)), box(item))
    add(IMAGE_IDS[3], "nucleus", [[60, 10, 90, 10, 75, 40]], [60, 10, 30, 30])
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": WIDTH, "height": HEIGHT}
                       for i in IMAGE_IDS],
            "categories": [{"id": CATEGORY_IDS[n], "name": n} for n in LABELS],
            "annotations": annotations}


@pytest.fixture(scope="module")
def truth(segmenter_artifact):
    return ground_truth(segmenter_artifact)


@pytest.fixture
def evaluated(api, funded, project_of_a, segmenter_artifact, truth, cpu_spec):
    gt = copy.deepcopy(truth)
    files = {f"images/{i}.png": png(noise(s)) for s, i in enumerate(IMAGE_IDS)}
    files["annotations.json"] = json.dumps(gt).encode()
    dataset = upload_ready(api, funded, project_of_a["id"], make_zip(files),
                           kind="segmentation", fmt="coco", name="masks")
    model = stored_model(funded.tenant_id, project_of_a["id"], segmenter_artifact,
                         "segmentation", MODEL, LABELS)
    body, dt = evaluated_through_api(api, funded, model, dataset["id"], score_threshold=SCORE)
    return body, gt, dt


def pycocotools_stats(gt, dt, iou_type):
    truth = COCO()
    truth.dataset = copy.deepcopy(gt)
    truth.createIndex()
    found = truth.loadRes(copy.deepcopy([{k: d[k] for k in (
        "image_id", "category_id", "bbox", "score", "segmentation")} for d in dt]))
    run = COCOeval(truth, found, iou_type)
    run.evaluate()
    run.accumulate()
    run.summarize()
    return run.stats


def missed_masks(gt, dt, score, iou=0.5):
    """Image ids with ground truth no kept detection of its label matched, by mask IoU, as COCO
    matches: per image and label, detections by descending score each take the free ground
    truth of highest IoU >= iou (ties: the later)."""
    missed = set()
    for image_id in IMAGE_IDS:
        for category_id in CATEGORY_IDS.values():
            truth = [a for a in gt["annotations"]
                     if (a["image_id"], a["category_id"]) == (image_id, category_id)]
            kept = sorted((d for d in dt if (d["image_id"], d["category_id"]) ==
                           (image_id, category_id) and d["score"] >= score),
                          key=lambda d: -d["score"])
            matched = [False] * len(truth)
            for d in kept:
                if not truth:
                    break
                ious = mask_utils.iou([rle_of(d["segmentation"])],
                                      [rle_of(a["segmentation"]) for a in truth],
                                      [0] * len(truth))[0]
                best, m = min(iou, 1 - 1e-10), -1
                for g, value in enumerate(ious):
                    if not matched[g] and value >= best:
                        best, m = value, g
                if m >= 0:
                    matched[m] = True
            if not all(matched):
                missed.add(image_id)
    return sorted(missed)


COCO_STATS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100",
              "AR_small", "AR_medium", "AR_large")


def test_mask_metrics_equal_the_engine_and_pycocotools(api, funded, evaluated):
    body, gt, dt = evaluated
    assert dt and all(d["segmentation"]["size"] == [HEIGHT, WIDTH] for d in dt)
    segm = coco.evaluate(gt, dt, "segm")
    box = coco.evaluate(gt, dt, "bbox")
    metrics = body["metrics"]
    mask = metrics["mask"]
    # by name: PostgreSQL's jsonb does not keep the keys' order
    assert [mask["coco"][k] for k in COCO_STATS] == pytest.approx(segm.stats.tolist())
    assert [mask["coco"][k] for k in COCO_STATS] == pytest.approx(
        pycocotools_stats(gt, dt, "segm"))
    assert [metrics["coco"][k] for k in COCO_STATS] == pytest.approx(box.stats.tolist())
    assert (mask["map"], mask["map50"], mask["map75"]) == pytest.approx(tuple(segm.stats[:3]))
    assert set(mask) == set(metrics) - {"mask"}
    assert mask["tp"] > 0, "the test must exercise a mask match"
    assert [(r["label"], r["ap"]) for r in mask["per_label"]] == [
        (name, segm.per_category_ap[CATEGORY_IDS[name]]) for name in LABELS]
    moved = api.as_(funded).get(f"/api/v1/evaluations/{body['id']}/metrics/",
                                {"iou": 0.75, "score_threshold": 0.0}).json()["mask"]
    strict = operating_point.operating_point(segm, 0.75, 0.0).overall
    assert (moved["tp"], moved["fp"], moved["fn"]) == (strict.tp, strict.fp, strict.fn)

    from evaluation.models import Evaluation

    stored = results.load(Evaluation.objects.unscoped().get(id=body["id"]).results_key)
    assert [a["area"] for a in stored.document["gt"]["annotations"]] == [
        a["area"] for a in gt["annotations"]], "ground-truth areas are mask areas"
    assert body["summary"]["badcase_count"] == len(
        detection_confusion.badcases(segm, 0.5, SCORE))


def test_missed_and_false_positive_masks_are_listed_apart_from_boxes(api, funded, evaluated):
    body, gt, dt = evaluated
    url = f"/api/v1/evaluations/{body['id']}/"
    client = api.as_(funded)
    missed = client.get(url + "badcases/", {"iou_type": "segm", "kind": "missed",
                                            "limit": 500}).json()["results"]
    assert [b["image_id"] for b in missed] == missed_masks(gt, dt, SCORE)
    assert all(b["missed"] and not b["false_positives"] for b in missed)
    segm, box = coco.evaluate(gt, dt, "segm"), coco.evaluate(gt, dt, "bbox")
    box_missed = client.get(url + "badcases/", {"kind": "missed", "limit": 500}).json()
    assert [b["image_id"] for b in box_missed["results"]] == [
        w["image_id"] for w in detection_confusion.badcases(box, 0.5, SCORE, kind="missed")]
    loose = gt["annotations"][0]["image_id"]  # its rectangle matches a box, not a mask
    assert loose in [b["image_id"] for b in missed]
    assert loose not in [b["image_id"] for b in box_missed["results"]]
    for kind in ("false_positive", "missed"):
        got = client.get(url + "badcases/", {"iou_type": "segm", "kind": kind}).json()
        want = detection_confusion.badcases(segm, 0.5, SCORE, kind=kind)
        assert [(b["image_id"], len(b["false_positives"]), len(b["missed"]))
                for b in got["results"]] == [(w["image_id"], len(w["false_positives"]),
                                              len(w["missed"])) for w in want]
    names = {v: k for k, v in CATEGORY_IDS.items()}
    assert client.get(url + "confusion/", {"iou_type": "segm"}).json() == (
        detection_confusion.detection_confusion(segm, 0.5, SCORE, names=names).as_api())
    assert client.get(url + "confusion/").json() == (
        detection_confusion.detection_confusion(box, 0.5, SCORE, names=names).as_api())
    for query in ({"iou_type": "mask"}, {"iou_type": "SEGM"}):
        for route in ("badcases/", "confusion/"):
            response = client.get(url + route, query)
            assert response.status_code == 400, response.content
            assert "iou_type" in response.json()["error"]["fields"]


def test_segm_is_refused_where_there_are_no_masks(api, funded, classifier, digits_dataset,
                                                  cpu_spec):
    created = api.as_(funded).post("/api/v1/evaluations/", {
        "model": str(classifier.id), "dataset": digits_dataset["id"]}, format="json").json()
    run_evaluation.fn(created["id"])
    for route in ("badcases/", "confusion/"):
        response = api.as_(funded).get(f"/api/v1/evaluations/{created['id']}/{route}",
                                       {"iou_type": "segm"})
        assert response.status_code == 400, response.content
        assert "iou_type" in response.json()["error"]["fields"]


# --- reports on a results document whose predictions are set exactly ---------------------------


def pixels(segmentation):
    return mask_utils.decode(rle_of(segmentation, 64, 64)).astype(bool)


def encoded(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [64, 64], "counts": rle["counts"].decode()}


SQUARE = [[10, 10, 50, 10, 50, 50, 10, 50]]
LOWER_LEFT = [[10, 10, 10, 50, 50, 50]]
UPPER_RIGHT = [[10, 10, 50, 10, 50, 50]]


def exact_document(with_masks=True):
    """Image 1: a square found exactly. Image 2: a lower-left triangle found as the upper-right
    one, in the very same box: box IoU 1, mask IoU near 0."""
    truth = [(1, SQUARE), (2, LOWER_LEFT)]
    annotations = [{"id": n, "image_id": image, "category_id": 1, "bbox": [10, 10, 40, 40],
                    "area": float(results.mask_area(segm, 64, 64)), "iscrowd": 0,
                    "segmentation": segm} for n, (image, segm) in enumerate(truth, start=1)]
    detections = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9,
                   "segmentation": encoded(pixels(SQUARE))},
                  {"image_id": 2, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.8,
                   "segmentation": encoded(pixels(UPPER_RIGHT))}]
    if not with_masks:
        for row in annotations + detections:
            del row["segmentation"]
    gt = {"images": [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 64}
                     for i in (1, 2)],
          "categories": [{"id": 1, "name": "cell"}], "annotations": annotations}
    return {"format": results.FORMAT, "version": results.VERSION, "scenario": "segmentation",
            "labels": ["cell"], "gt": gt, "dt": detections}


def test_a_box_match_with_a_wrong_mask_is_a_mask_error_only():
    document = exact_document()
    assert mask_utils.iou([rle_of(document["dt"][1]["segmentation"], 64, 64)],
                          [rle_of(LOWER_LEFT, 64, 64)], [0])[0][0] < 0.5
    parsed = results.parse(document)
    metrics = reports.metrics(parsed, 0.5, 0.5)
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["recall"]) == (2, 0, 0, 1.0)
    mask = metrics["mask"]
    assert (mask["tp"], mask["fp"], mask["fn"], mask["recall"]) == (1, 1, 1, 0.5)
    segm = coco.evaluate(document["gt"], document["dt"], "segm")
    assert [mask["coco"][k] for k in COCO_STATS] == pytest.approx(segm.stats.tolist())
    assert [mask["coco"][k] for k in COCO_STATS] == pytest.approx(
        pycocotools_stats(document["gt"], document["dt"], "segm"))
    assert mask["map50"] == pytest.approx(51 / 101)  # precision 1 up to recall 0.5, then none
    assert mask["per_label"][0]["best_threshold"] is not None

    assert reports.badcases(parsed, 0.5, 0.5) == []
    missed = reports.badcases(parsed, 0.5, 0.5, iou_type="segm", kind="missed")
    assert [(b["image_id"], [m["annotation_id"] for m in b["missed"]]) for b in missed] == [
        (2, [2])]
    wrong = reports.badcases(parsed, 0.5, 0.5, iou_type="segm", kind="false_positive")
    assert [(b["image_id"], [(f["label"], f["score"]) for f in b["false_positives"]])
            for b in wrong] == [(2, [("cell", 0.8)])]
    assert reports.badcase_count(parsed, 0.5, 0.5) == 1, "segmentation counts mask errors"
    assert reports.confusion(parsed, 0.5, 0.5)["matrix"] == [[2]]
    masks = reports.confusion(parsed, 0.5, 0.5, iou_type="segm")
    assert masks["matrix"] == [[1]]
    assert masks["missed"][0] + masks["low_overlap"][0] == 1
    rows = reports.predictions(parsed)
    assert [r["segmentation"] for r in rows] == [d["segmentation"] for d in document["dt"]]


def test_a_segmentation_document_without_masks_still_reads_as_boxes():
    parsed = results.parse(exact_document(with_masks=False))
    assert parsed.coco_mask is None
    metrics = reports.metrics(parsed, 0.5, 0.5)
    assert "mask" not in metrics and metrics["recall"] == 1.0
    assert all("segmentation" not in r for r in reports.predictions(parsed))
    assert reports.badcase_count(parsed, 0.5, 0.5) == 0
    assert results.coco_for(parsed, "bbox") is parsed.coco
    with pytest.raises(ValueError, match="no masks"):
        results.coco_for(parsed, "segm")


def test_mask_area_is_pycocotools_area_of_polygons_and_rle():
    assert results.mask_area(SQUARE, 64, 64) == float(mask_utils.area(rle_of(SQUARE, 64, 64)))
    mask = pixels(LOWER_LEFT)
    assert results.mask_area(encoded(mask), 64, 64) == float(mask.sum())
    uncompressed = {"size": [2, 3], "counts": [1, 2, 3]}
    assert results.mask_area(uncompressed, 2, 3) == 2.0
