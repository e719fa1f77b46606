"""The world of the interactive-report tests: evaluations built once per module, and the
expectations those tests compute themselves.

Every figure is checked against an expectation computed here: a threshold sweep over the
`/predictions/` list, scikit-learn and pycocotools, or a small greedy assignment written out below.
The evaluations are built once per module inside one transaction that is rolled back at the end;
each test runs in a savepoint inside it (as Django's TestCase.setUpTestData does).
"""

import contextlib
import copy
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.db import transaction

from billing import wallet
from billing.models import ComputeSpec
from evaluation.actors import run_evaluation
from metrics import coco
from tests.conftest import Account, Api, sign_up
from tests.datasets.zips import make_zip
from tests.evaluation_runs.conftest import DIGIT_LABELS, stored_model, upload_ready
from tests.evaluation_runs.test_detection_runs import (  # noqa: F401 (a fixture)
    CATEGORY_IDS,
    IMAGE_IDS,
    LABELS,
    detector_artifact,
    ground_truth,
    noise,
    png,
)

NAMES = {cid: name for name, cid in CATEGORY_IDS.items()}
BASE, CAT_FLOOR, LOW_IOU = 0.3, 0.6, 0.25



# --- one world per module ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    """A transaction around everything the module builds, rolled back when it is done."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer._from_testcase = True  # nested durable blocks behave as under TestCase
        outer.__enter__()
    yield django_db_blocker
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@dataclass
class World:
    api: Api
    a: Account
    b: Account
    project: dict


@pytest.fixture(scope="module")
def world(module_db) -> World:
    with module_db.unblock():
        api = Api()
        a, b = sign_up(api, tenant="Tenant A"), sign_up(api, tenant="Tenant B")
        wallet.adjust(a.tenant_id, 100_000, "test funding", "staff:test")
        ComputeSpec.objects.create(name="eval-cpu-1", kind="cpu", cpu_cores=1, memory_gib=2,
                                   price_per_hour=3600)
        project = api.as_(a).post("/api/v1/projects/", {"name": "Reports"}, format="json")
        assert project.status_code == 201, project.content
        return World(api, a, b, project.json())


def evaluate(world: World, model, dataset_id: str, **settings) -> dict:
    """Create an evaluation, run it in this thread, and return its report."""
    created = world.api.as_(world.a).post("/api/v1/evaluations/", {
        "model": str(model.id), "dataset": dataset_id, **settings}, format="json")
    assert created.status_code == 201, created.content
    run_evaluation.fn(created.json()["id"])
    body = world.api.as_(world.a).get(f"/api/v1/evaluations/{created.json()['id']}/").json()
    assert body["state"] == "succeeded", body
    return body


@dataclass
class Classified:
    body: dict
    model: object
    dataset: dict
    labels: list  # label names, the report's order
    files: list  # file names, by image id order
    ids: list  # image ids
    y: np.ndarray  # true label index per image
    scores: np.ndarray  # images x labels


@pytest.fixture(scope="module")
def fitted_classifier(tmp_path_factory, digits_bytes) -> Path:
    """An untrained small_cnn calls every digit the same; this one's last layer is fitted in
    closed form (nearest class mean of the features of 3 images a label), which makes it right
    about 3 times in 4 with mistakes in several cells of the confusion matrix."""
    import torch
    from PIL import Image

    from training_runtime import models
    from training_runtime.export.artifact import export_artifact

    images, truth = [], []
    with zipfile.ZipFile(io.BytesIO(digits_bytes)) as archive:
        for name in sorted(archive.namelist()):
            pixels = np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGB"),
                                dtype=np.float32) / 255
            images.append(torch.as_tensor(pixels).permute(2, 0, 1))
            truth.append(DIGIT_LABELS.index(name.split("/")[0]))
    torch.manual_seed(0)
    net = models.build(models.get("classification", "small_cnn"), num_classes=3).eval()
    head, net.fc = net.fc, torch.nn.Identity()
    with torch.no_grad():
        features = net(torch.stack(images))
        net.fc = head
        labels = torch.tensor(truth)
        mean = features.mean(0)
        directions = torch.stack([features[labels == k][:3].mean(0) for k in range(3)]) - mean
        head.weight.copy_(40 * directions / directions.norm(dim=1, keepdim=True))
        head.bias.copy_(-(head.weight @ mean))
    path = tmp_path_factory.mktemp("fitted") / "model"
    export_artifact(net, path, scenario="classification", model_name="small_cnn",
                    labels=DIGIT_LABELS, input_size=(32, 32), normalization=None, metrics={},
                    program="none")
    return path


@pytest.fixture(scope="module")
def cls(world, module_db, fitted_classifier, digits_bytes) -> Classified:
    with module_db.unblock():
        dataset = upload_ready(world.api, world.a, world.project["id"], digits_bytes,
                               name="digits")
        model = stored_model(world.a.tenant_id, world.project["id"], fitted_classifier,
                             "classification", "small_cnn", DIGIT_LABELS)
        body = evaluate(world, model, dataset["id"])
        rows = world.api.as_(world.a).get(
            f"/api/v1/evaluations/{body['id']}/predictions/").json()
    by_image: dict = {}
    for row in rows:  # top-5 of 3 labels: every score
        by_image.setdefault(row["image_id"], (row["file_name"], {}))[1][row["label"]] = \
            row["score"]
    ids = sorted(by_image)
    files = [by_image[i][0] for i in ids]
    scores = np.array([[by_image[i][1][name] for name in DIGIT_LABELS] for i in ids])
    y = np.array([DIGIT_LABELS.index(name.split("/")[0]) for name in files])
    return Classified(body, model, dataset, list(DIGIT_LABELS), files, ids, y, scores)


@dataclass
class Detected:
    plain: dict  # the evaluation at score_threshold 0.3
    floors: dict  # the same with score_thresholds {"cat": 0.6} and low_overlap_iou 0.25
    model: object
    dataset: dict
    gt: dict
    dt: list
    result: object  # coco.evaluate(gt, dt)
    files: dict  # uploaded file name -> bytes


@contextlib.contextmanager
def spread_scores():
    """An untrained detector gives every box of a label the same score, which leaves nothing
    for a threshold to decide. While this is active, each detection's score is instead a fixed
    pseudo-random function of its image, label and box, so scores spread over (0.05, 0.95)."""
    from training_runtime.predict import Predictor

    original = Predictor.predict

    def predict(self, images, **kwargs):
        found = original(self, images, **kwargs)
        if self.scenario == "classification":
            return found
        for image, items in zip(images, found, strict=True):
            for item in items:
                key = f"{Path(str(image)).name}|{item['label']}|{[round(v) for v in item['bbox']]}"
                fraction = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8
                item["score"] = round(0.05 + 0.9 * fraction, 6)
            items.sort(key=lambda item: -item["score"])
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Predictor, "predict", predict)
        yield


@pytest.fixture(scope="module")
def det(world, module_db, detector_artifact) -> Detected:  # noqa: F811 (the fixture)
    gt = ground_truth(detector_artifact)
    files = {f"images/{i}.png": png(noise(s)) for s, i in enumerate(IMAGE_IDS)}
    files["annotations.json"] = json.dumps(gt).encode()
    with module_db.unblock(), spread_scores():
        dataset = upload_ready(world.api, world.a, world.project["id"], make_zip(files),
                               kind="detection", fmt="coco", name="boxes")
        model = stored_model(world.a.tenant_id, world.project["id"], detector_artifact,
                             "detection", "fasterrcnn_mobilenet_v3_large_320_fpn", LABELS)
        plain = evaluate(world, model, dataset["id"], score_threshold=BASE)
        floors = evaluate(world, model, dataset["id"], score_threshold=BASE,
                          score_thresholds={"cat": CAT_FLOOR}, low_overlap_iou=LOW_IOU)
        dt = world.api.as_(world.a).get(f"/api/v1/evaluations/{plain['id']}/predictions/").json()
        again = world.api.as_(world.a).get(
            f"/api/v1/evaluations/{floors['id']}/predictions/").json()
    assert again == dt
    return Detected(plain, floors, model, dataset, gt, dt, coco.evaluate(gt, dt, "bbox"), files)




# --- expectations worked out here ---------------------------------------------------------------


def url(evaluation: dict, route: str) -> str:
    return f"/api/v1/evaluations/{evaluation['id']}/{route}"


def invalid(response, field: str) -> dict:
    """The API's 400 shape, naming `field`."""
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    assert field in error["fields"] and error["fields"][field], error
    return error


def box_iou(a, b) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _best(candidates, low: float, high: float = 2.0):
    """The candidate (index, box) with the highest IoU in [low, high); ties: the later one."""
    chosen, best = None, low
    for index, value in candidates:
        if best <= value < high:
            chosen, best = index, value
    return chosen


def assignment(gt: dict, dt: list, iou: float, floors: dict, low: float = 0.1) -> list[tuple]:
    """(image id, truth, prediction) for every object and kept detection, written out from the
    definitions: COCO's greedy matching per label, then confusions (another label's object at
    IoU >= iou), then low-overlap finds (own label, IoU in [low, iou)), then what is left:
    objects -> "missed", detections -> truth "background". Truth is a label or "background",
    prediction a label, "missed" or "low_overlap". `floors`: label -> score threshold."""
    events = []
    for image in sorted({i["id"] for i in gt["images"]}):
        truths = [a for a in gt["annotations"] if a["image_id"] == image]
        kept = sorted((d for d in dt if d["image_id"] == image
                       and d["score"] >= floors[NAMES[d["category_id"]]]),
                      key=lambda d: -d["score"])
        free_gt, free_dt = set(range(len(truths))), list(range(len(kept)))
        for n, d in enumerate(kept):  # COCO: by score, the best unmatched object of its label
            j = _best(((j, box_iou(d["bbox"], truths[j]["bbox"])) for j in sorted(free_gt)
                       if truths[j]["category_id"] == d["category_id"]), min(iou, 1 - 1e-10))
            if j is not None:
                free_gt.discard(j)
                free_dt.remove(n)
                name = NAMES[d["category_id"]]
                events.append((image, name, name))
        for same, high, floor in ((False, 2.0, iou), (True, iou, low)):
            for n in list(free_dt):
                d = kept[n]
                j = _best(((j, box_iou(d["bbox"], truths[j]["bbox"])) for j in sorted(free_gt)
                           if (truths[j]["category_id"] == d["category_id"]) == same),
                          floor, high)
                if j is not None:
                    free_gt.discard(j)
                    free_dt.remove(n)
                    truth = NAMES[truths[j]["category_id"]]
                    events.append((image, truth, "low_overlap" if same
                                   else NAMES[d["category_id"]]))
        events += [(image, NAMES[truths[j]["category_id"]], "missed") for j in sorted(free_gt)]
        events += [(image, "background", NAMES[kept[n]["category_id"]]) for n in free_dt]
    return events


def cell(events, truth, predicted) -> list:
    return sorted({image for image, t, p in events if (t, p) == (truth, predicted)})


def pycoco(gt: dict, dt: list):
    """pycocotools' own evaluation of the same boxes (an implementation apart from ours)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = copy.deepcopy(gt)
        truth.createIndex()
        found = truth.loadRes([{k: d[k] for k in ("image_id", "category_id", "bbox", "score")}
                               for d in dt])
        run = COCOeval(truth, found, "bbox")
        run.evaluate()
        run.accumulate()
    return run


def pycoco_ap(run, category_id, iou: float | None = None) -> float:
    """AP of one category at one IoU (or averaged over 0.50:0.95), area all, 100 detections."""
    k = run.params.catIds.index(category_id)
    rows = run.eval["precision"][:, :, k, 0, -1]
    if iou is not None:
        rows = rows[np.flatnonzero(np.isclose(run.params.iouThrs, iou))]
    return float(np.mean(rows[rows > -1])) if np.any(rows > -1) else -1.0


def best_of(sweep: dict) -> tuple[float, float]:
    """(threshold, F1) with the highest F1; among equals the highest threshold."""
    top = max(sweep.values())
    return max(t for t, f1 in sweep.items() if f1 == top), top


def kept_floors(base: float, **per_label) -> dict:
    return {name: per_label.get(name, base) for name in LABELS}


