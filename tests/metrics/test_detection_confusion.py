"""Detection confusion matrix (missed column, background row, low-overlap bucket) and badcases."""

import subprocess
import sys
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from pycocotools import mask as mask_utils

from metrics.coco import evaluate
from metrics.detection_confusion import badcases, detection_confusion

CAT, DOG, BIRD = 1, 2, 3
NAMES = {CAT: "cat", DOG: "dog", BIRD: "bird"}
GRID = [round(0.5 + 0.05 * i, 2) for i in range(10)]


def ann(ann_id, image_id, category_id, bbox, iscrowd=0):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox,
            "area": float(bbox[2] * bbox[3]), "iscrowd": iscrowd}


def det(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def scene() -> tuple[dict, list]:
    """Four images covering every kind of outcome (see the comments)."""
    gt = {
        "images": [{"id": i, "width": 640, "height": 480} for i in (1, 2, 3, 4)],
        "categories": [{"id": c, "name": n} for c, n in NAMES.items()],
        "annotations": [
            ann(11, 1, CAT, [10, 10, 100, 100]),
            ann(12, 1, DOG, [200, 10, 100, 100]),
            ann(13, 1, BIRD, [400, 10, 100, 100]),
            ann(21, 2, DOG, [10, 10, 50, 50]),
            ann(22, 2, CAT, [400, 200, 200, 200], iscrowd=1),
            ann(31, 3, BIRD, [100, 100, 80, 80]),
            ann(32, 3, CAT, [300, 100, 80, 80]),
            ann(33, 3, DOG, [10, 300, 60, 60]),
            ann(41, 4, CAT, [100, 100, 100, 100]),
        ],
    }
    dets = [
        det(1, CAT, [10, 10, 100, 100], 0.9),  # correct
        det(1, CAT, [200, 10, 100, 100], 0.8),  # dog seen as cat
        det(1, BIRD, [450, 10, 100, 100], 0.7),  # right label, IoU 1/3: low overlap
        det(1, CAT, [12, 12, 100, 100], 0.6),  # duplicate of the correct one
        det(2, DOG, [300, 300, 50, 50], 0.9),  # on empty background
        det(2, CAT, [420, 220, 100, 100], 0.8),  # inside a cat crowd region: ignored
        det(2, DOG, [450, 250, 100, 100], 0.85),  # dog on a cat crowd region: a false alarm
        det(2, BIRD, [10, 10, 50, 50], 0.3),  # below the score threshold
        det(3, BIRD, [100, 100, 80, 80], 0.95),  # correct
        det(3, DOG, [300, 100, 80, 80], 0.7),  # cat seen as dog
        det(3, BIRD, [304, 100, 80, 80], 0.6),  # cat seen as bird too, but the dog came first
        det(3, DOG, [65, 300, 60, 60], 0.65),  # IoU 0.043 with its dog: below low_iou
        det(4, CAT, [150, 100, 100, 100], 0.9),  # low overlap, but ...
        det(4, DOG, [100, 100, 100, 100], 0.55),  # ... a confusion at IoU 1 wins the object
    ]
    return gt, dets


@pytest.fixture(scope="module")
def result():
    gt, dets = scene()
    return evaluate(gt, dets, "bbox")


@pytest.fixture(scope="module")
def confusion(result):
    return detection_confusion(result, iou=0.5, score=0.5, low_iou=0.1, names=NAMES)


# ---------------------------------------------------------------- the hand-made scene


def test_matrix_and_buckets_of_the_scene(confusion):
    assert confusion.row_labels == confusion.column_labels == [CAT, DOG, BIRD]
    assert confusion.matrix.tolist() == [[1, 2, 0], [1, 0, 0], [0, 0, 1]]
    assert confusion.missed.tolist() == [0, 2, 0]
    assert confusion.low_overlap.tolist() == [0, 0, 1]
    assert confusion.background.tolist() == [2, 3, 1]
    assert confusion.objects.tolist() == [3, 3, 2]  # the crowd cat is not an object
    assert confusion.image_counts.tolist() == [3, 3, 2]
    assert confusion.detections.tolist() == [4, 5, 3]  # the crowd-matched cat is not counted
    assert confusion.recall.tolist() == pytest.approx([1 / 3, 0, 1 / 2])
    assert confusion.precision.tolist() == pytest.approx([1 / 4, 0, 1 / 3])


@pytest.mark.parametrize(("true_label", "predicted_label", "images"), [
    (CAT, CAT, [1]),
    (CAT, DOG, [3, 4]),
    (DOG, CAT, [1]),
    (BIRD, BIRD, [3]),
    (DOG, "missed", [2, 3]),
    (BIRD, "low_overlap", [1]),
    (CAT, "missed", []),
    ("background", CAT, [1, 4]),  # the duplicate, and the cat that lost its object to a dog
    ("background", DOG, [2, 3]),  # empty background, the crowd region, the low-IoU dog
    ("background", BIRD, [3]),
])
def test_each_cell_lists_its_images(confusion, true_label, predicted_label, images):
    assert confusion.cell_images(true_label, predicted_label) == images


def test_a_lower_score_threshold_brings_the_low_scoring_detection_in(result):
    lower = detection_confusion(result, iou=0.5, score=0.2)

    assert lower.matrix.tolist() == [[1, 2, 0], [1, 0, 1], [0, 0, 1]]
    assert lower.missed.tolist() == [0, 1, 0]
    assert lower.cell_images(DOG, BIRD) == [2]


def test_a_stricter_iou_turns_matches_into_low_overlap_and_confusions_into_misses():
    gt = {"images": [{"id": 1}], "categories": [{"id": CAT}, {"id": DOG}], "annotations": [
        ann(1, 1, CAT, [0, 0, 100, 100]), ann(2, 1, DOG, [200, 0, 100, 100])]}
    dets = [det(1, CAT, [0, 0, 100, 90], 0.9),  # IoU 0.9 with its cat
            det(1, CAT, [200, 0, 100, 90], 0.9)]  # IoU 0.9 with the dog
    result = evaluate(gt, dets)

    loose = detection_confusion(result, iou=0.5)
    strict = detection_confusion(result, iou=0.95)

    assert loose.matrix.tolist() == [[1, 0], [1, 0]]
    assert (loose.low_overlap.tolist(), loose.missed.tolist()) == ([0, 0], [0, 0])
    assert strict.matrix.tolist() == [[0, 0], [0, 0]]
    assert (strict.low_overlap.tolist(), strict.missed.tolist()) == ([1, 0], [0, 1])
    assert strict.background.tolist() == [1, 0]


def test_a_higher_low_iou_turns_low_overlap_into_missed(result):
    raised_low = detection_confusion(result, iou=0.5, score=0.5, low_iou=0.4)

    assert raised_low.low_overlap.tolist() == [0, 0, 0]  # the bird at IoU 1/3 is now missed
    assert raised_low.missed.tolist() == [0, 2, 1]
    assert raised_low.background.tolist() == [2, 3, 2]


def test_a_detection_explains_one_object_only():
    gt = {"images": [{"id": 1}], "categories": [{"id": CAT}, {"id": DOG}], "annotations": [
        ann(1, 1, CAT, [0, 0, 100, 100]), ann(2, 1, DOG, [60, 0, 100, 100])]}
    dets = [det(1, DOG, [0, 0, 100, 100], 0.9)]  # IoU 1 with the cat, 0.25 with the dog

    confusion = detection_confusion(evaluate(gt, dets))

    assert confusion.matrix.tolist() == [[0, 1], [0, 0]]
    assert confusion.low_overlap.tolist() == [0, 0]
    assert confusion.missed.tolist() == [0, 1]
    assert confusion.background.tolist() == [0, 0]


def test_detections_beyond_the_hundred_best_of_an_image_and_label_are_not_counted():
    gt = {"images": [{"id": 1}], "categories": [{"id": CAT}],
          "annotations": [ann(1, 1, CAT, [0, 0, 10, 10])]}
    dets = [det(1, CAT, [20 + 3 * n, 20, 10, 10], 0.9) for n in range(120)]

    confusion = detection_confusion(evaluate(gt, dets), score=0.5)

    assert confusion.background.tolist() == [100]
    assert confusion.missed.tolist() == [1]


def test_as_api_has_the_documented_shape(confusion):
    body = confusion.as_api()

    assert body["labels"] == ["cat", "dog", "bird"]
    assert body["matrix"] == [[1, 2, 0], [1, 0, 0], [0, 0, 1]]
    assert body["missed"] == [0, 2, 0]
    assert body["background"] == [2, 3, 1]
    assert body["low_overlap"] == [0, 0, 1]
    assert body["image_count"] == [3, 3, 2]
    assert body["recall"] == pytest.approx([1 / 3, 0, 1 / 2])
    assert "other_predicted" not in body and "page" not in body
    for row, missed, low, objects in zip(body["matrix"], body["missed"], body["low_overlap"],
                                         body["object_count"], strict=True):
        assert sum(row) + missed + low == objects
    without_names = detection_confusion(evaluate(*scene())).as_api()
    assert without_names["labels"] == [CAT, DOG, BIRD]


def test_empty_evaluations_and_string_image_ids():
    gt = {"images": [{"id": "a"}, {"id": "b"}], "categories": [{"id": CAT}, {"id": DOG}],
          "annotations": []}
    empty = detection_confusion(evaluate(gt, []))
    assert empty.matrix.tolist() == [[0, 0], [0, 0]] and empty.recall.tolist() == [0, 0]
    assert badcases(evaluate(gt, [])) == []

    gt["annotations"] = [ann(0, "b", CAT, [0, 0, 10, 10])]
    result = evaluate(gt, [det("a", DOG, [0, 0, 10, 10], 0.9)])
    confusion = detection_confusion(result)
    assert confusion.missed.tolist() == [1, 0] and confusion.background.tolist() == [0, 1]
    assert confusion.cell_images("background", DOG) == ["a"]
    assert [case["image_id"] for case in badcases(result)] == ["a", "b"]


# ---------------------------------------------------------------- views


def test_subset_counts_the_rest_as_other(confusion):
    view = confusion.subset([BIRD, CAT])

    assert view.row_labels == view.column_labels == [BIRD, CAT]
    assert view.matrix.tolist() == [[1, 0], [0, 1]]
    assert view.other_predicted.tolist() == [0, 2]  # the cats seen as dogs
    assert view.other_true.tolist() == [0, 1]  # the dog seen as a cat
    assert view.missed.tolist() == [0, 0]
    assert view.low_overlap.tolist() == [1, 0]
    assert view.background.tolist() == [1, 2]
    body = view.as_api()
    assert body["labels"] == ["bird", "cat"]
    assert body["other_predicted"] == [0, 2] and body["other_true"] == [0, 1]
    assert view.cell_images(DOG, "missed") == [2, 3]  # any cell of the evaluation


def test_subset_rejects_unknown_and_repeated_labels(confusion):
    with pytest.raises(ValueError, match="not among"):
        confusion.subset([CAT, 99])
    with pytest.raises(ValueError, match="repeat"):
        confusion.subset([CAT, CAT])


def big_confusion(labels: int = 23):
    """A scene with many labels: object k of image k is found as label (k * 7) % labels."""
    cats = list(range(1, labels + 1))
    gt = {"images": [{"id": i} for i in range(1, 3 * labels + 1)],
          "categories": [{"id": c} for c in cats], "annotations": []}
    dets = []
    for image in range(1, 3 * labels + 1):
        label = cats[image % labels]
        gt["annotations"].append(ann(image, image, label, [0, 0, 50, 50]))
        if image % 5:
            dets.append(det(image, cats[(image * 7) % labels], [0, 0, 50, 50], 0.9))
    return detection_confusion(evaluate(gt, dets), iou=0.5, score=0.5)


@pytest.mark.parametrize("per_side", [10, 15, 20])
def test_pages_tile_the_matrix(per_side):
    full = big_confusion()
    row_pages, col_pages = full.page_counts(per_side)
    assert (row_pages, col_pages) == (-(-23 // per_side),) * 2
    rebuilt = np.zeros_like(full.matrix)
    for r in range(row_pages):
        for c in range(col_pages):
            view = full.page(r, c, per_side)
            rows = slice(r * per_side, (r + 1) * per_side)
            cols = slice(c * per_side, (c + 1) * per_side)
            rebuilt[rows, cols] = view.matrix
            assert view.row_labels == full.row_labels[rows]
            assert view.column_labels == full.column_labels[cols]
            assert view.missed.tolist() == full.missed[rows].tolist()
            assert view.background.tolist() == full.background[cols].tolist()
            assert (view.matrix.sum(1) + view.other_predicted + view.missed
                    + view.low_overlap == view.objects).all()
            assert (view.matrix.sum(0) + view.other_true + view.background
                    + view.low_overlap_detections == view.detections).all()
    assert (rebuilt == full.matrix).all()


def test_an_off_diagonal_page_names_its_rows_and_columns():
    body = big_confusion().page(0, 1, per_side=10).as_api()

    assert body["row_labels"] == list(range(1, 11))
    assert body["column_labels"] == list(range(11, 21))
    assert "labels" not in body
    assert body["page"] == {"row_page": 0, "column_page": 1, "per_side": 10, "row_pages": 3,
                            "column_pages": 3}


def test_a_subset_pages_within_its_labels():
    view = big_confusion().subset([5, 3, 1]).page(0, 0, per_side=10)

    assert view.row_labels == [5, 3, 1]


def test_paging_rejects_other_sizes_and_pages_beyond_the_last():
    full = big_confusion()
    with pytest.raises(ValueError, match="per_side"):
        full.page(0, 0, per_side=12)
    with pytest.raises(ValueError, match="outside"):
        full.page(3, 0, per_side=10)
    with pytest.raises(ValueError, match="outside"):
        full.page(0, -1, per_side=10)


# ---------------------------------------------------------------- badcases


def test_badcases_list_false_positives_and_missed_objects_per_image(result):
    cases = badcases(result, iou=0.5, score=0.5, file_names={1: "a.jpg"})

    assert [case["image_id"] for case in cases] == [1, 2, 3, 4]
    first = cases[0]
    assert first["file_name"] == "a.jpg" and cases[1]["file_name"] is None
    assert [(fp["category_id"], fp["score"], fp["bucket"]) for fp in first["false_positives"]] == [
        (CAT, 0.8, "confusion"), (BIRD, 0.7, "low_overlap"), (CAT, 0.6, "background")]
    assert first["false_positives"][0]["overlaps"] == {"annotation_id": 12, "category_id": DOG,
                                                       "iou": 1.0}
    assert first["false_positives"][1]["bbox"] == [450.0, 10.0, 100.0, 100.0]
    duplicate = first["false_positives"][2]["overlaps"]
    assert duplicate["annotation_id"] == 11 and duplicate["iou"] == pytest.approx(9604 / 10396)
    assert [(m["annotation_id"], m["bucket"]) for m in first["missed"]] == [
        (12, "confusion"), (13, "low_overlap")]
    assert first["missed"][0]["predicted"]["category_id"] == CAT
    assert first["missed"][1]["predicted"]["iou"] == pytest.approx(1 / 3)
    second = cases[1]
    assert [(fp["score"], fp["overlaps"]) for fp in second["false_positives"]] == [
        (0.9, None), (0.85, None)]  # the crowd-matched cat and the 0.3 bird are not errors
    assert second["missed"] == [{"annotation_id": 21, "category_id": DOG,
                                 "bbox": [10.0, 10.0, 50.0, 50.0], "bucket": "missed",
                                 "predicted": None}]
    low_dog = cases[2]["false_positives"][1]
    assert (low_dog["score"], low_dog["overlaps"]) == (0.65, None)  # IoU 0.043 < low_iou


@pytest.mark.parametrize(("filters", "expected"), [
    ({"true_label": DOG}, {1: (1, 1), 2: (0, 1), 3: (0, 1)}),
    ({"predicted_label": DOG}, {2: (2, 0), 3: (2, 1), 4: (1, 1)}),
    ({"true_label": CAT, "predicted_label": DOG}, {3: (1, 1), 4: (1, 1)}),
    ({"kind": "missed"}, {1: (0, 2), 2: (0, 1), 3: (0, 2), 4: (0, 1)}),
    ({"kind": "false_positive", "predicted_label": BIRD}, {1: (1, 0), 3: (1, 0)}),
    ({"true_label": BIRD, "kind": "missed"}, {1: (0, 1)}),
    ({"true_label": CAT, "kind": "false_positive"}, {1: (1, 0), 3: (2, 0), 4: (2, 0)}),
])
def test_badcase_filters_keep_matching_entries(result, filters, expected):
    cases = badcases(result, iou=0.5, score=0.5, **filters)

    assert {c["image_id"]: (len(c["false_positives"]), len(c["missed"])) for c in cases} == expected


def test_badcases_reject_an_unknown_kind(result):
    with pytest.raises(ValueError, match="kind"):
        badcases(result, kind="duplicate")


# ---------------------------------------------------------------- invalid settings


@pytest.mark.parametrize("settings_", [
    {"iou": 0.52}, {"iou": 0.3}, {"iou": 1.0},
    {"iou": 0.5, "low_iou": 0.6}, {"iou": 0.5, "low_iou": 0.0},
])
def test_invalid_thresholds_are_rejected(result, settings_):
    with pytest.raises(ValueError):
        detection_confusion(result, **settings_)


def test_cells_must_name_a_cell(confusion):
    with pytest.raises(ValueError, match="not among"):
        confusion.cell_images(99, CAT)
    with pytest.raises(ValueError, match="predicted labels only"):
        confusion.cell_images("background", "missed")
    with pytest.raises(ValueError, match="row"):
        confusion.cell_images(CAT, "background")


def test_without_categories_there_is_no_confusion_matrix():
    gt, dets = scene()
    with pytest.raises(ValueError, match="use_cats"):
        detection_confusion(evaluate(gt, dets, use_cats=False))


# ---------------------------------------------------------------- segmentation


def box_rle(box, height=100, width=100):
    x, y, w, h = box
    mask = np.zeros((height, width), dtype=np.uint8, order="F")
    mask[y:y + h, x:x + w] = 1
    rle = mask_utils.encode(mask)
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def test_segmentation_uses_mask_iou_with_the_ground_truth_image_sizes():
    gt = {"images": [{"id": 1, "height": 100, "width": 100}], "categories": [{"id": CAT},
          {"id": DOG}], "annotations": [
        {**ann(1, 1, CAT, [0, 0, 40, 40]), "segmentation": box_rle([0, 0, 40, 40])},
        {**ann(2, 1, DOG, [50, 50, 40, 40]),
         "segmentation": [[50, 50, 50, 90, 90, 90, 90, 50]]},
    ]}
    dets = [  # the boxes say nothing overlaps; the masks say a cat sits on the dog
        {**det(1, CAT, [0, 0, 1, 1], 0.9), "segmentation": box_rle([50, 50, 40, 40])},
        {**det(1, DOG, [50, 50, 1, 1], 0.9), "segmentation": box_rle([80, 0, 10, 10])},
    ]
    result = evaluate(gt, dets, "segm")

    confusion = detection_confusion(result)

    assert confusion.matrix.tolist() == [[0, 0], [1, 0]]
    assert confusion.missed.tolist() == [1, 0]
    assert confusion.background.tolist() == [0, 1]


# ---------------------------------------------------------------- invariants on random scenes


def random_scene(seed: int) -> tuple[dict, list]:
    """Objects with crowd regions, and a detector's faults: jitter, swapped labels, duplicates,
    misses, background boxes, tied scores, sometimes an image with over 100 boxes of a label."""
    rng = np.random.default_rng(seed)
    n_images, n_cats = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    cats = sorted(rng.choice(np.arange(1, 20), n_cats, replace=False).tolist())
    gt = {"images": [{"id": i} for i in range(1, n_images + 1)],
          "categories": [{"id": c} for c in cats], "annotations": []}
    dets: list[dict] = []
    scores = [0.3, 0.5, 0.7, 0.9]
    for image in range(1, n_images + 1):
        for _ in range(int(rng.integers(0, 7))):
            w, h = rng.uniform(5, 60, 2)
            box = [float(v) for v in (*rng.uniform(0, 100, 2), w, h)]
            label = int(rng.choice(cats))
            gt["annotations"].append(ann(len(gt["annotations"]) + 1, image, label, box,
                                         iscrowd=int(rng.random() < 0.1)))
            for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
                jitter = rng.normal(0, rng.choice([0.05, 0.3]), 4) * [w, h, w, h]
                guess = label if rng.random() < 0.7 else int(rng.choice(cats))
                dets.append(det(image, guess, [box[0] + jitter[0], box[1] + jitter[1],
                                               max(1.0, w + jitter[2]), max(1.0, h + jitter[3])],
                                float(rng.choice(scores)) if rng.random() < 0.4
                                else float(rng.uniform())))
        for _ in range(int(rng.integers(0, 4))):
            dets.append(det(image, int(rng.choice(cats)),
                            [float(v) for v in rng.uniform(0, 120, 2)] + [30.0, 30.0],
                            float(rng.uniform())))
    if rng.random() < 0.2:
        dets += [det(1, cats[0], [float(n), 0.0, 20.0, 20.0], 0.8) for n in range(105)]
    return gt, dets


def box_iou(a, b):
    return float(mask_utils.iou([a], [b], [0])[0][0])


def reference(result, gt: dict, iou: float, score: float, low_iou: float) -> dict:
    """The documented assignment, object by object, for each cell: sorted (image, gt, det)."""
    tab = result.matches
    t = GRID.index(iou)
    limit = min(float(tab.iou_thrs[t]), 1 - 1e-10)
    anns = gt["annotations"]
    kept = (tab.det_score >= score) & ~tab.det_ignored[t]
    cells: dict = {}

    def add(cell, image, g, d):
        cells.setdefault(cell, []).append((image, g, d))

    taken_gt = set()
    free = []
    for row in np.flatnonzero(kept).tolist():
        d = int(tab.det_index[row])
        if tab.det_gt[t][row] >= 0:
            g = int(tab.det_gt[t][row])
            taken_gt.add(g)
            add((anns[g]["category_id"],) * 2, anns[g]["image_id"], g, d)
        else:
            free.append(d)
    regular = [int(g) for g, ignored in zip(tab.gt_index, tab.gt_ignored, strict=True)
               if not ignored]
    open_gt = sorted(g for g in regular if g not in taken_gt)
    dt = result.dt
    free.sort(key=lambda d: (-dt.scores[d], d))
    used = set()
    for same, lo, hi in ((False, limit, 2.0), (True, low_iou, limit)):
        for d in free:
            if d in used:
                continue
            best, best_iou = None, -1.0
            for g in open_gt:
                a = anns[g]
                if (g in taken_gt or a["image_id"] != dt.image_ids[d]
                        or (a["category_id"] == dt.category_ids[d]) != same):
                    continue
                value = box_iou(list(dt.boxes[d]), a["bbox"])
                if lo <= value < hi and value >= best_iou:
                    best, best_iou = g, value
            if best is not None:
                used.add(d)
                taken_gt.add(best)
                cell = (anns[best]["category_id"], "low_overlap" if same else
                        dt.category_ids[d])
                add(cell, anns[best]["image_id"], best, d)
    for g in open_gt:
        if g not in taken_gt:
            add((anns[g]["category_id"], "missed"), anns[g]["image_id"], g, -1)
    for d in free:
        if d not in used:
            add(("background", dt.category_ids[d]), dt.image_ids[d], -1, d)
    return cells


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), iou=st.sampled_from([0.5, 0.55, 0.75, 0.9]),
       score=st.sampled_from([0.0, 0.3, 0.5, 0.7]), low_iou=st.sampled_from([0.1, 0.3]))
def test_every_object_and_detection_is_counted_once(seed, iou, score, low_iou):
    gt, dets = random_scene(seed)
    result = evaluate(gt, dets)
    tab = result.matches
    t = GRID.index(iou)

    confusion = detection_confusion(result, iou=iou, score=score, low_iou=low_iou)

    labels = confusion.row_labels
    objects = [sum(1 for a in gt["annotations"] if a["category_id"] == c and not a["iscrowd"])
               for c in labels]
    assert (confusion.matrix.sum(1) + confusion.missed + confusion.low_overlap
            == objects).all()
    kept = (tab.det_score >= score) & ~tab.det_ignored[t]
    tp = [int(np.sum(kept & (tab.det_gt[t] >= 0) & (tab.det_category == c))) for c in labels]
    assert np.diag(confusion.matrix).tolist() == tp
    detections = [int(np.sum(kept & (tab.det_category == c))) for c in labels]
    assert (confusion.matrix.sum(0) + confusion.background + confusion.low_overlap_detections
            == detections).all()
    assert (confusion.low_overlap_detections == confusion.low_overlap).all()

    cells = reference(result, gt, iou, score, low_iou)
    for (true, pred), events in cells.items():
        assert confusion.cell_images(true, pred) == sorted({image for image, _, _ in events})
    expected = np.zeros_like(confusion.matrix)
    for (true, pred), events in cells.items():
        if true in labels and pred in labels:
            expected[labels.index(true), labels.index(pred)] = len(events)
    assert (confusion.matrix == expected).all()
    for name, values in (("missed", confusion.missed), ("low_overlap", confusion.low_overlap)):
        assert values.tolist() == [len(cells.get((c, name), [])) for c in labels]
    assert confusion.background.tolist() == [len(cells.get(("background", c), []))
                                             for c in labels]

    if len(labels) > 1:
        view = confusion.subset(labels[::-2])
        rows = [labels.index(c) for c in labels[::-2]]
        assert (view.matrix == confusion.matrix[np.ix_(rows, rows)]).all()
        assert (view.matrix.sum(1) + view.other_predicted + view.missed + view.low_overlap
                == view.objects).all()

    cases = badcases(result, iou=iou, score=score, low_iou=low_iou)
    n_fp = sum(len(c["false_positives"]) for c in cases)
    n_missed = sum(len(c["missed"]) for c in cases)
    assert n_fp == sum(detections) - sum(tp)
    assert n_missed == sum(objects) - sum(tp)
    for true in labels:
        for pred in labels:
            if true != pred:
                confused = badcases(result, iou=iou, score=score, low_iou=low_iou,
                                    true_label=true, predicted_label=pred, kind="missed")
                assert [c["image_id"] for c in confused] == confusion.cell_images(true, pred)


# ---------------------------------------------------------------- purity


def test_the_module_imports_no_framework():
    probe = ("import sys, metrics.detection_confusion; "
             "bad = [k for k in sys.modules if k.split('.')[0] in "
             "{'django', 'torch', 'rest_framework', 'sklearn'}]; assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
