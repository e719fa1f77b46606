"""P/R/F1 at an operating point, threshold tables and PR curves, against a brute-force count."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from metrics.coco import evaluate
from metrics.operating_point import (
    iou_index,
    operating_point,
    overall_threshold_table,
    pr_curves,
    threshold_tables,
)
from tests.metrics.cocogen import make_case


def brute_force(gt: dict, dets: list, iou: float, score: float) -> dict:
    """Per category (tp, kept, non-crowd gt): the reference's greedy loop, written plainly."""
    counts: dict = {c["id"]: [0, 0, 0] for c in gt["categories"]}
    for ann in gt["annotations"]:
        if not ann.get("iscrowd", 0):
            counts[ann["category_id"]][2] += 1
    groups: dict = {}
    for ann in gt["annotations"]:
        groups.setdefault((ann["image_id"], ann["category_id"]), ([], []))[0].append(ann)
    for det in dets:
        groups.setdefault((det["image_id"], det["category_id"]), ([], []))[1].append(det)
    for (_, cat), (gts, ds) in groups.items():
        ds = sorted(ds, key=lambda d: -d["score"])[:100]  # stable, like mergesort
        ds = [d for d in ds if d["score"] >= score]
        gts = sorted(gts, key=lambda g: bool(g.get("iscrowd", 0)))  # regular first
        crowd = [int(bool(g.get("iscrowd", 0))) for g in gts]
        ious = (np.asarray(mask_utils.iou([d["bbox"] for d in ds], [g["bbox"] for g in gts],
                                          crowd)).reshape(len(ds), len(gts))
                if ds and gts else np.zeros((len(ds), len(gts))))
        taken = [False] * len(gts)
        for i in range(len(ds)):
            best, m = min(iou, 1 - 1e-10), -1
            for j in range(len(gts)):
                if taken[j] and not crowd[j]:
                    continue
                if m > -1 and not crowd[m] and crowd[j]:
                    break
                if ious[i, j] < best:
                    continue
                best, m = ious[i, j], j
            if m > -1 and crowd[m]:
                continue  # matched crowd: ignored, not kept
            counts[cat][1] += 1
            if m > -1:
                taken[m] = True
                counts[cat][0] += 1
    return counts


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("iou", "score"), [(0.5, 0.5), (0.75, 0.3), (0.9, 0.0), (0.55, 0.8)])
def test_figures_equal_a_brute_force_count(seed, iou, score):
    gt, dets = make_case(seed)
    result = evaluate(gt, dets)
    point = operating_point(result, iou=iou, score=score)
    # The grid's float, as COCO uses it: "0.9" is 0.8999999999999999.
    expected = brute_force(gt, dets, result.matches.iou_thrs[iou_index(result, iou)], score)
    for label in point.per_label:
        tp, kept, objects = expected[label.category_id]
        assert (label.tp, label.det_count, label.gt_count) == (tp, kept, objects)
        assert label.precision == pytest.approx(tp / kept if kept else 0.0, abs=1e-12)
        assert label.recall == pytest.approx(tp / objects if objects else 0.0, abs=1e-12)
    tp, kept, objects = (sum(v[i] for v in expected.values()) for i in range(3))
    assert (point.overall.tp, point.overall.det_count, point.overall.gt_count) == (tp, kept,
                                                                                    objects)
    p, r = point.overall.precision, point.overall.recall
    assert point.overall.f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0, abs=1e-12)


def test_iou_must_be_on_the_evaluated_grid():
    gt, dets = make_case(1)
    result = evaluate(gt, dets)
    assert iou_index(result, 0.75) == 5
    with pytest.raises(ValueError, match="not among the evaluated thresholds"):
        operating_point(result, iou=0.52)


@pytest.mark.parametrize("seed", range(5))
def test_threshold_table_rows_are_operating_points(seed):
    gt, dets = make_case(seed)
    result = evaluate(gt, dets)
    tables = threshold_tables(result, iou=0.5)
    for label in operating_point(result, iou=0.5, score=0.0).per_label:
        table = tables[label.category_id]
        for row in range(0, len(table.thresholds), max(1, len(table.thresholds) // 5)):
            at = operating_point(result, iou=0.5, score=float(table.thresholds[row]))
            figures = next(f for f in at.per_label if f.category_id == label.category_id)
            assert (table.tp[row], table.fp[row]) == (figures.tp, figures.fp)
            assert table.f1[row] == pytest.approx(figures.f1, abs=1e-12)
        best = table.best()
        if best is not None:
            assert best["f1"] == pytest.approx(float(np.max(table.f1)), abs=1e-15)
    overall = overall_threshold_table(result, iou=0.5).best()
    at_best = operating_point(result, iou=0.5, score=overall["threshold"]).overall
    assert at_best.f1 == pytest.approx(overall["f1"], abs=1e-12)


def test_pr_curves_carry_cocos_interpolated_precision():
    gt, dets = make_case(3)
    result = evaluate(gt, dets)
    curves = pr_curves(result, iou=0.5)
    t = iou_index(result, 0.5)
    for k, cat in enumerate(result.cat_ids):
        curve = curves[cat]
        assert len(curve.recall_grid) == 101
        np.testing.assert_array_equal(curve.interpolated_precision,
                                      result.precision[t, :, k, 0, -1])
        assert np.all(np.diff(curve.recall) >= 0)  # recall never falls as the threshold drops
        if curve.ap > -1:
            assert curve.ap == pytest.approx(float(np.mean(result.precision[t, :, k, 0, -1])))
