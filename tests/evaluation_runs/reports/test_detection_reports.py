"""Interactive reports of a detection evaluation (curves, confusion views and cells, label
detail, error taxonomy, instances, one image), per-label confidences, validation settings, stop
and tenants. Expectations come from tests/evaluation_runs/reports/conftest.py."""

import numpy as np
import pytest

from billing.models import Meter
from evaluation.models import Evaluation
from eventlog.models import Event
from metrics import detection_confusion, operating_point
from tests.conftest import Api
from tests.evaluation_runs.reports.conftest import (
    BASE,
    CAT_FLOOR,
    LOW_IOU,
    NAMES,
    assignment,
    best_of,
    cell,
    invalid,
    kept_floors,
    pycoco,
    pycoco_ap,
    url,
)
from tests.evaluation_runs.test_detection_runs import CATEGORY_IDS, IMAGE_IDS, LABELS

pytestmark = pytest.mark.django_db  # each test: a savepoint inside the module's transaction


# --- detection ------------------------------------------------------------------------------------


def test_detection_data_exercises_every_bucket(det):
    """The module's data has matches, confusions, misses, false alarms and low-overlap finds
    (at IoU 0.75), and cat detections on both sides of 0.6: otherwise the checks prove little."""
    at_half = {p if t != "background" else t for _, t, p in
               assignment(det.gt, det.dt, 0.5, kept_floors(BASE))}
    assert {"cat", "dog", "missed", "background", "low_overlap"} <= at_half
    assert any(t in LABELS and p in LABELS and t != p for _, t, p in
               assignment(det.gt, det.dt, 0.5, kept_floors(BASE)))
    strict = assignment(det.gt, det.dt, 0.75, kept_floors(BASE))
    assert any(p == "low_overlap" for _, _, p in strict)
    cat_scores = [d["score"] for d in det.dt if d["category_id"] == CATEGORY_IDS["cat"]]
    assert min(cat_scores) < BASE < CAT_FLOOR < max(cat_scores)


def test_detection_curves_equal_a_threshold_sweep_and_pycocotools(api, world, det):
    run = pycoco(det.gt, det.dt)
    for iou in (0.5, 0.75):
        body = api.as_(world.a).get(url(det.plain, "curves/"), {"iou": iou}).json()
        assert body["iou"] == iou
        assert [row["label"] for row in body["labels"]] == LABELS
        overall_sweep = {}
        for row in body["labels"]:
            cid = CATEGORY_IDS[row["label"]]
            k = LABELS.index(row["label"])
            sweep = {}
            for t in sorted({d["score"] for d in det.dt if d["category_id"] == cid}):
                sweep[t] = operating_point.operating_point(det.result, iou, t).per_label[k].f1
            threshold, f1 = best_of(sweep)
            assert (row["best"]["threshold"], row["best"]["f1"]) == pytest.approx((threshold, f1))
            at_best = operating_point.operating_point(det.result, iou, threshold).per_label[k]
            assert (row["best"]["precision"], row["best"]["recall"]) == pytest.approx(
                (at_best.precision, at_best.recall))
            assert row["ap"] == pytest.approx(pycoco_ap(run, cid, iou))
            assert row["count"] == sum(a["category_id"] == cid for a in det.gt["annotations"])
            assert [r["threshold"] for r in row["table"]] == pytest.approx(
                [0.05 * i for i in range(20)])
            for r in row["table"]:
                want = operating_point.operating_point(det.result, iou, r["threshold"]
                                                       ).per_label[k]
                assert (r["precision"], r["recall"], r["f1"]) == pytest.approx(
                    (want.precision, want.recall, want.f1)), (iou, row["label"], r)
            assert len(row["interpolated"]) == 101
            assert any(p["threshold"] == pytest.approx(threshold) for p in row["points"])
        for t in sorted({d["score"] for d in det.dt}):
            overall_sweep[t] = operating_point.operating_point(det.result, iou, t).overall.f1
        threshold, f1 = best_of(overall_sweep)
        assert (body["overall"]["best"]["threshold"], body["overall"]["best"]["f1"]) == \
            pytest.approx((threshold, f1))
    per_label = api.as_(world.a).get(url(det.plain, "metrics/")).json()["per_label"]
    assert [row["ap"] for row in per_label] == pytest.approx(
        [pycoco_ap(run, CATEGORY_IDS[n]) for n in LABELS])  # AP@[.5:.95]
    one = api.as_(world.a).get(url(det.plain, "curves/"), {"label": "dog"}).json()
    assert [row["label"] for row in one["labels"]] == ["dog"]
    invalid(api.as_(world.a).get(url(det.plain, "curves/"), {"label": "horse"}), "label")
    invalid(api.as_(world.a).get(url(det.plain, "curves/"), {"iou": 0.52}), "iou")


def test_detection_confusion_cells_are_the_engines_and_the_hand_assignment(api, world, det):
    for iou in (0.5, 0.75):
        events = assignment(det.gt, det.dt, iou, kept_floors(BASE))
        engine = detection_confusion.detection_confusion(det.result, iou, BASE)
        cells = [(t, p) for t in LABELS for p in (*LABELS, "missed", "low_overlap")]
        cells += [("background", p) for p in LABELS]
        for truth, predicted in cells:
            got = api.as_(world.a).get(url(det.plain, "confusion/cell/"), {
                "true_label": truth, "predicted_label": predicted, "iou": iou,
                "limit": 500}).json()
            images = [r["image_id"] for r in got["results"]]
            assert got["count"] == len(images) and got["next"] is None
            assert all(r["file_name"] == f"{r['image_id']}.png" for r in got["results"])
            engine_images = engine.cell_images(
                truth if truth == "background" else CATEGORY_IDS[truth],
                predicted if predicted in ("missed", "low_overlap") else CATEGORY_IDS[predicted])
            assert images == engine_images, (iou, truth, predicted)
            assert images == cell(events, truth, predicted), (iou, truth, predicted)
        matrix = api.as_(world.a).get(url(det.plain, "confusion/"), {"iou": iou}).json()
        for k, truth in enumerate(LABELS):
            assert matrix["missed"][k] == sum(e[1:] == (truth, "missed") for e in events)
            assert matrix["low_overlap"][k] == sum(e[1:] == (truth, "low_overlap")
                                                   for e in events)
            assert matrix["matrix"][k] == [sum(e[1:] == (truth, p) for e in events)
                                           for p in LABELS]
            assert matrix["background"][k] == sum(e[1:] == ("background", truth)
                                                  for e in events)
    missed = api.as_(world.a).get(url(det.plain, "confusion/cell/"), {
        "true_label": "dog", "predicted_label": "missed"}).json()
    assert 14 in [r["image_id"] for r in missed["results"]]  # the 5x5 dog nothing found
    paged = api.as_(world.a).get(url(det.plain, "confusion/cell/"), {
        "true_label": "background", "predicted_label": "cat", "limit": 1}).json()
    assert paged["count"] > 1 and len(paged["results"]) == 1 and "offset=1" in paged["next"]
    cell_url = url(det.plain, "confusion/cell/")
    invalid(api.as_(world.a).get(cell_url, {"true_label": "background",
                                            "predicted_label": "missed"}), "predicted_label")
    invalid(api.as_(world.a).get(cell_url, {"predicted_label": "cat"}), "true_label")
    invalid(api.as_(world.a).get(cell_url, {"true_label": "horse", "predicted_label": "cat"}),
            "true_label")


def test_detection_confusion_subsets_and_pages_keep_every_object(api, world, det):
    events = assignment(det.gt, det.dt, 0.5, kept_floors(BASE))
    full = api.as_(world.a).get(url(det.plain, "confusion/")).json()
    for name in LABELS:
        view = api.as_(world.a).get(url(det.plain, "confusion/"), {"labels": name}).json()
        objects = sum(a["category_id"] == CATEGORY_IDS[name] for a in det.gt["annotations"])
        assert view["labels"] == [name] and view["object_count"] == [objects]
        assert (view["matrix"][0][0] + view["other_predicted"][0] + view["missed"][0]
                + view["low_overlap"][0]) == objects
        assert view["other_predicted"][0] == sum(t == name and p in LABELS and p != name
                                                 for _, t, p in events)
        assert view["other_true"][0] == sum(p == name and t in LABELS and t != name
                                            for _, t, p in events)
        kept = sum(d["category_id"] == CATEGORY_IDS[name] and d["score"] >= BASE
                   for d in det.dt)
        assert view["detection_count"] == [kept]
    swapped = api.as_(world.a).get(url(det.plain, "confusion/"), {"labels": "dog,cat"}).json()
    assert swapped["labels"] == ["dog", "cat"]
    assert swapped["matrix"] == [row[::-1] for row in full["matrix"][::-1]]
    assert "other_predicted" not in full and "other_predicted" not in swapped
    page = api.as_(world.a).get(url(det.plain, "confusion/"), {
        "per_side": 10, "row_page": 0, "column_page": 0}).json()
    assert page["page"] == {"row_page": 0, "column_page": 0, "per_side": 10, "row_pages": 1,
                            "column_pages": 1}
    assert page["matrix"] == full["matrix"]
    confusion = url(det.plain, "confusion/")
    invalid(api.as_(world.a).get(confusion, {"per_side": 10, "row_page": 1}), "row_page")
    invalid(api.as_(world.a).get(confusion, {"per_side": 12}), "per_side")
    invalid(api.as_(world.a).get(confusion, {"labels": "cat,cat"}), "labels")
    invalid(api.as_(world.a).get(confusion, {"labels": "cat,horse"}), "labels")


def test_detection_label_detail(api, world, det):
    events = assignment(det.gt, det.dt, 0.5, kept_floors(BASE))
    point = operating_point.operating_point(det.result, 0.5, BASE)
    for k, name in enumerate(LABELS):
        body = api.as_(world.a).get(url(det.plain, "label/"), {"label": name}).json()
        want = point.per_label[k]
        assert (body["precision"], body["recall"]) == pytest.approx((want.precision,
                                                                     want.recall))
        assert (body["count"], body["predicted_count"]) == (want.gt_count, want.det_count)
        # a detection is wrong when it is not a match: confused, a false alarm, or a
        # low-overlap find (those carry their own label, hence truth == name)
        wrong = sum((p == name and t != name) or (t, p) == (name, "low_overlap")
                    for _, t, p in events)
        assert body["misrecognition_rate"] == pytest.approx(wrong / want.det_count)
        assert body["image_count"] == len({a["image_id"] for a in det.gt["annotations"]
                                           if a["category_id"] == CATEGORY_IDS[name]})
        counts = {}
        for _, t, p in events:
            if t == name:
                counts[p] = counts.get(p, 0) + 1
        rows = body["predicted_as"]["results"]
        assert {r["label"]: r["count"] for r in rows} == counts
        assert [r["count"] for r in rows] == sorted(counts.values(), reverse=True)
        assert sum(r["share"] for r in rows) == pytest.approx(1.0)
        assert [i["image_id"] for i in body["wrongly_predicted_as"]] == sorted(
            {image for image, t, p in events
             if (p == name and t != name) or (t, p) == (name, "low_overlap")})


def test_detection_error_taxonomy_names_its_labels(api, world, det):
    from metrics.tide import tide

    body = api.as_(world.a).get(url(det.plain, "errors/")).json()
    want = tide(det.gt, det.dt, iou_fg=0.5, iou_bg=0.1).summary()
    run = pycoco(det.gt, det.dt)
    assert body["baseline_ap"] == pytest.approx(
        np.mean([pycoco_ap(run, CATEGORY_IDS[n], 0.5) for n in LABELS]))
    assert body["counts"] == want["counts"]
    assert body["delta_ap"] == pytest.approx(want["delta_ap"])
    assert sorted(row["label"] for row in body["per_label"]) == LABELS
    assert all("category_id" not in row for row in body["per_label"])
    strict = api.as_(world.a).get(url(det.plain, "errors/"), {"iou": 0.75}).json()
    assert strict["iou_fg"] == 0.75


def test_detection_instances_are_the_assignment(api, world, det):
    events = assignment(det.gt, det.dt, 0.5, kept_floors(BASE))

    def outcome(t, p):
        if p == "missed":
            return "missed"
        if p == "low_overlap":
            return "low_overlap"
        if t == "background":
            return "false_alarm"
        return "matched" if t == p else "confused"

    want = sorted((image, outcome(t, p), None if t == "background" else t,
                   None if p in ("missed", "low_overlap") else p) for image, t, p in events)
    rows = api.as_(world.a).get(url(det.plain, "instances/"), {"limit": 500}).json()
    assert rows["count"] == len(events)
    got = sorted((r["image_id"], r["outcome"], r["true_label"], r["predicted_label"])
                 for r in rows["results"])
    low = [w for w in want if w[1] == "low_overlap"]  # a low-overlap row names both sides
    assert [g for g in got if g[1] != "low_overlap"] == [w for w in want if w[1] != "low_overlap"]
    assert [g[:3] for g in got if g[1] == "low_overlap"] == [w[:3] for w in low]
    for choice in ("missed", "false_alarm", "matched"):
        only = api.as_(world.a).get(url(det.plain, "instances/"),
                                    {"outcome": choice, "limit": 500}).json()
        assert only["count"] == sum(w[1] == choice for w in want)
        assert {r["outcome"] for r in only["results"]} <= {choice}
    dogs = api.as_(world.a).get(url(det.plain, "instances/"), {"label": "dog",
                                                                "limit": 500}).json()
    assert dogs["count"] == sum("dog" in (w[2], w[3]) for w in want)
    invalid(api.as_(world.a).get(url(det.plain, "instances/"), {"outcome": "wrong"}), "outcome")
    invalid(api.as_(world.a).get(url(det.plain, "instances/"), {"label": "horse"}), "label")


def test_detection_image_detail_and_its_preview(api, world, det):
    events = assignment(det.gt, det.dt, 0.5, kept_floors(BASE))
    for image in IMAGE_IDS:
        body = api.as_(world.a).get(url(det.plain, "image/"), {"image_id": image}).json()
        assert (body["image_id"], body["file_name"]) == (image, f"{image}.png")
        assert [t["annotation_id"] for t in body["truth"]] == [
            a["id"] for a in det.gt["annotations"] if a["image_id"] == image]
        mine = sorted((d for d in det.dt if d["image_id"] == image), key=lambda d: -d["score"])
        assert [(p["label"], p["score"], p["kept"]) for p in body["predictions"]] == [
            (NAMES[d["category_id"]], d["score"], d["score"] >= BASE) for d in mine]
        unmatched = sum(i == image and t in LABELS and t != p for i, t, p in events)
        false_positives = sum(i == image and t != p and (p in LABELS or p == "low_overlap")
                              for i, t, p in events)
        assert len(body["missed"]) == unmatched, image
        assert len(body["false_positives"]) == false_positives, image
        assert "preview_url" not in body
    shown = api.as_(world.a).get(url(det.plain, "image/"), {"image_id": 12, "preview": "true"},
                                 HTTP_HOST="attacker.example").json()  # forged: PUBLIC_URL wins
    assert shown["preview_url"].startswith("http://testserver/api/v1/evaluation-previews/")
    served = Api().get(shown["preview_url"])  # no credentials
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served.content == det.files["images/12.png"]
    invalid(api.as_(world.a).get(url(det.plain, "image/"), {"image_id": 99}), "image_id")
    invalid(api.as_(world.a).get(url(det.plain, "image/")), "image_id")
    invalid(api.as_(world.a).get(url(det.plain, "heatmap/"), {"image_id": 12}), "image_id")


def test_per_label_thresholds_and_low_overlap_iou_apply_to_every_report(api, world, det):
    floors = kept_floors(BASE, cat=CAT_FLOOR)
    events = assignment(det.gt, det.dt, 0.5, floors, low=LOW_IOU)
    assert any(p == "low_overlap" for _, _, p in assignment(det.gt, det.dt, 0.5, floors))
    assert not any(p == "low_overlap" for _, _, p in events), "0.25 must turn a find to a miss"
    cat, dog = (LABELS.index(n) for n in ("cat", "dog"))
    at_floor = operating_point.operating_point(det.result, 0.5, CAT_FLOOR).per_label[cat]
    at_base = operating_point.operating_point(det.result, 0.5, BASE).per_label
    assert at_floor.det_count < at_base[cat].det_count, "0.6 must drop some cat detections"
    want = {"cat": at_floor, "dog": at_base[dog]}
    assert det.floors["options"]["score_thresholds"] == {"cat": CAT_FLOOR}
    assert det.floors["options"]["low_overlap_iou"] == LOW_IOU
    stored = det.floors["metrics"]
    fetched = api.as_(world.a).get(url(det.floors, "metrics/")).json()
    for metrics in (stored, fetched):
        assert metrics["score_thresholds"] == {"cat": CAT_FLOOR}
        for row in metrics["per_label"]:
            w = want[row["label"]]
            assert (row["tp"], row["fp"], row["fn"]) == (w.tp, w.fp, w.fn), row["label"]
            assert (row["precision"], row["recall"]) == pytest.approx((w.precision, w.recall))
    confusion = api.as_(world.a).get(url(det.floors, "confusion/")).json()
    assert confusion["low_iou"] == LOW_IOU
    assert confusion["detection_count"] == [want[n].det_count for n in LABELS]
    for k, name in enumerate(LABELS):
        assert confusion["matrix"][k] == [sum(e[1:] == (name, p) for e in events)
                                          for p in LABELS]
        assert confusion["missed"][k] == sum(e[1:] == (name, "missed") for e in events)
        assert confusion["low_overlap"][k] == 0
        assert confusion["background"][k] == sum(e[1:] == ("background", name) for e in events)
        detail = api.as_(world.a).get(url(det.floors, "label/"), {"label": name}).json()
        assert (detail["precision"], detail["recall"]) == pytest.approx(
            (want[name].precision, want[name].recall))
    for truth, predicted in (("dog", "missed"), ("background", "cat"), ("cat", "dog")):
        got = api.as_(world.a).get(url(det.floors, "confusion/cell/"), {
            "true_label": truth, "predicted_label": predicted, "limit": 500}).json()
        assert [r["image_id"] for r in got["results"]] == cell(events, truth, predicted)
    badcases = api.as_(world.a).get(url(det.floors, "badcases/"), {"limit": 500}).json()
    assert [b["image_id"] for b in badcases["results"]] == sorted(
        {image for image, t, p in events if t != p})
    matched = api.as_(world.a).get(url(det.floors, "instances/"), {
        "outcome": "matched", "label": "cat", "limit": 500}).json()
    assert matched["count"] == at_floor.tp
    everything = api.as_(world.a).get(url(det.floors, "instances/"), {"limit": 500}).json()
    assert sorted((r["image_id"], r["outcome"]) for r in everything["results"]) == sorted(
        (i, "matched" if t == p else "missed" if p == "missed" else "false_alarm"
         if t == "background" else "confused") for i, t, p in events)
    assert api.as_(world.a).get(url(det.floors, "errors/")).json()["iou_bg"] == LOW_IOU
    image = api.as_(world.a).get(url(det.floors, "image/"), {"image_id": 11}).json()
    assert all(p["kept"] == (p["score"] >= floors[p["label"]]) for p in image["predictions"])


def test_a_base_moved_above_a_labels_confidence_lifts_it(api, world, det):
    moved = api.as_(world.a).get(url(det.floors, "metrics/"), {"score_threshold": 0.7}).json()
    want = operating_point.operating_point(det.result, 0.5, 0.7).per_label
    assert moved["score_thresholds"] == {"cat": 0.7}
    assert [(r["tp"], r["fp"]) for r in moved["per_label"]] == [(w.tp, w.fp) for w in want]



# --- stop, validation settings, tenants -----------------------------------------------------------


def test_stop_a_queued_evaluation_and_not_a_finished_one(api, world, cls):
    created = api.as_(world.a).post("/api/v1/evaluations/", {
        "model": str(cls.model.id), "dataset": cls.dataset["id"]}, format="json").json()
    assert created["state"] == "queued"
    stopped = api.as_(world.a).post(url(created, "stop/"))
    assert stopped.status_code == 200, stopped.content
    assert (stopped.json()["state"], stopped.json()["stop_reason"]) == ("stopped", "user")
    meters = Meter.objects.unscoped().filter(resource_type="evaluation",
                                             resource_id=created["id"])
    assert [m.state for m in meters] == [Meter.STOPPED]
    for ended in (created, cls.body):
        again = api.as_(world.a).post(url(ended, "stop/"))
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "evaluation_not_running"
    curves = api.as_(world.a).get(url(created, "curves/"))
    assert (curves.status_code, curves.json()["error"]["code"]) == (
        409, "evaluation_not_succeeded")


def test_validation_settings_are_checked_and_stored(api, world, det):
    def rows():
        return (Evaluation.objects.unscoped().count(), Event.objects.count(),
                Meter.objects.unscoped().count())

    before = rows()
    base = {"model": str(det.model.id), "dataset": det.dataset["id"], "score_threshold": 0.5}
    cases = [
        ({"score_thresholds": {"cat": 0.4}}, "score_thresholds", "'cat'"),
        ({"score_thresholds": {"horse": 0.9}}, "score_thresholds", "'horse'"),
        ({"score_thresholds": {"dog": 1.5}}, "score_thresholds", "'dog'"),
        ({"low_overlap_iou": 0}, "low_overlap_iou", ""),
        ({"low_overlap_iou": 0.6}, "low_overlap_iou", ""),
        ({"iou": 0.75, "low_overlap_iou": 0.8}, "low_overlap_iou", ""),
        ({"device": "tpu"}, "device", ""),
        ({"device": "gpu"}, "device", ""),  # no GPU spec is offered here
        ({"batch_size": 0}, "batch_size", ""),
        ({"image_size": 16}, "image_size", ""),
    ]
    for settings, field, named in cases:
        response = api.as_(world.a).post("/api/v1/evaluations/", {**base, **settings},
                                         format="json")
        error = invalid(response, field)
        assert named in error["message"], (settings, error)
    assert rows() == before, "a refused evaluation writes nothing"
    created = api.as_(world.a).post("/api/v1/evaluations/", {
        **base, "iou": 0.75, "score_thresholds": {"dog": 0.5, "cat": 0.9},
        "low_overlap_iou": 0.75, "device": "cpu", "batch_size": 2, "image_size": 64},
        format="json")
    assert created.status_code == 201, created.content
    options = created.json()["options"]
    assert options["score_thresholds"] == {"dog": 0.5, "cat": 0.9}
    assert (options["low_overlap_iou"], options["device"], options["batch_size"],
            options["image_size"]) == (0.75, "cpu", 2, 64)
    assert rows()[0] == before[0] + 1


def test_another_tenant_gets_404_on_every_interactive_route(api, world, cls, det):
    routes = [
        (det.plain, "curves/", {}), (det.plain, "confusion/", {"labels": "cat"}),
        (det.plain, "confusion/cell/", {"true_label": "cat", "predicted_label": "missed"}),
        (det.plain, "label/", {"label": "cat"}), (det.plain, "errors/", {}),
        (det.plain, "instances/", {}), (det.plain, "image/", {"image_id": 11, "preview": 1}),
        (cls.body, "heatmap/", {"image_id": cls.ids[0]}), (cls.body, "label/",
                                                            {"label": "digit-0"}),
    ]
    for evaluation, route, params in routes:
        assert api.as_(world.a).get(url(evaluation, route), params).status_code == 200, route
        response = api.as_(world.b).get(url(evaluation, route), params)
        assert response.status_code == 404, route
        assert response.json()["error"]["code"] == "not_found"
    queued = api.as_(world.a).post("/api/v1/evaluations/", {
        "model": str(cls.model.id), "dataset": cls.dataset["id"]}, format="json").json()
    refused = api.as_(world.b).post(url(queued, "stop/"))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert Evaluation.objects.unscoped().get(id=queued["id"]).state == "queued"



