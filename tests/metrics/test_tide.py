"""TIDE error analysis: each error type on a hand-made scene, its fix checked against the engine.

Ground truth boxes are 100 x 100 at the origin, so a detection's IoU is known from its box:
[0, 0, 30, 100] overlaps 0.3, [0, 0, 80, 100] 0.8, [0, 0, 50, 100] exactly 0.5 and
[0, 0, 10, 100] exactly 0.1. Where a fix has a plain meaning (drop a detection, move or relabel
it, drop a ground truth) the expected AP comes from our COCO engine on the edited input.
"""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.coco import evaluate
from metrics.tide import ERROR_TYPES, tide, tide_from_result
from tests.metrics.cocogen import annotation, dataset, detection, image, make_case

CAT, DOG = 1, 2
BOX = [0.0, 0.0, 100.0, 100.0]
IOU_03 = [0.0, 0.0, 30.0, 100.0]
IOU_08 = [0.0, 0.0, 80.0, 100.0]
IOU_05 = [0.0, 0.0, 50.0, 100.0]
IOU_01 = [0.0, 0.0, 10.0, 100.0]
FAR = [300.0, 300.0, 50.0, 50.0]


def ap50(gt: dict, dets: list[dict]) -> float:
    """Our engine's AP at IoU 0.5 (area all, 100 detections)."""
    return float(evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_thrs=[0.5]).stats[0])


def scene_with_every_error() -> tuple[dict, list[dict]]:
    """One of each TIDE error, all scored above a true positive so that each one costs AP.

    cats: image 1 (found, plus a duplicate and a far-off box), 2 (found only by a loose box),
    6 (nobody looks: missed), 7 (found); dogs: image 3 (boxed well but called a cat), image 4
    (found, plus a loose box called a cat).
    """
    images = [image(i) for i in (1, 2, 3, 4, 6, 7)]
    anns = [annotation(1, 1, CAT, BOX), annotation(2, 2, CAT, BOX), annotation(3, 3, DOG, BOX),
            annotation(4, 4, DOG, BOX), annotation(6, 6, CAT, BOX), annotation(7, 7, CAT, BOX)]
    dets = [
        detection(1, CAT, BOX, 0.3),  # 0 tp
        detection(1, CAT, BOX, 0.2),  # 1 dupe: same object, already found by detection 0
        detection(2, CAT, IOU_03, 0.9),  # 2 loc
        detection(3, CAT, IOU_08, 0.8),  # 3 cls: a dog
        detection(4, CAT, IOU_03, 0.7),  # 4 both: a dog, and a loose box
        detection(4, DOG, BOX, 0.95),  # 5 tp
        detection(1, CAT, FAR, 0.6),  # 6 bkg
        detection(7, CAT, BOX, 0.1),  # 7 tp
    ]
    return dataset(images, anns, [CAT, DOG]), dets


EXPECTED_OUTCOME = ["tp", "dupe", "loc", "cls", "both", "tp", "bkg", "tp"]


def without(dets: list[dict], *indices: int) -> list[dict]:
    return [d for n, d in enumerate(dets) if n not in indices]


def edited(dets: list[dict], index: int, **changes: object) -> list[dict]:
    dets = copy.deepcopy(dets)
    dets[index].update(changes)
    return dets


# ---------------------------------------------------------------- one of each error


def test_each_detection_gets_its_error_type():
    gt, dets = scene_with_every_error()

    report = tide(gt, dets)

    assert list(report.detection_errors) == EXPECTED_OUTCOME
    assert report.counts == {kind: 1 for kind in ERROR_TYPES}


def test_errors_point_at_the_ground_truth_they_concern():
    gt, dets = scene_with_every_error()

    report = tide(gt, dets)

    # ground truth indices: 0 cat@1, 1 cat@2, 2 dog@3, 3 dog@4, 4 cat@6, 5 cat@7
    assert list(report.detection_gt) == [0, 0, 1, 2, 3, 3, -1, 5]
    assert list(report.gt_errors) == ["tp", "covered", "covered", "tp", "missed", "tp"]


def test_per_label_counts_errors_under_the_predicted_label_and_misses_under_the_true_one():
    gt, dets = scene_with_every_error()

    report = tide(gt, dets)

    assert report.per_label[CAT]["counts"] == {kind: 1 for kind in ERROR_TYPES}
    assert report.per_label[DOG]["counts"] == {kind: 0 for kind in ERROR_TYPES}


def test_baseline_is_the_engines_ap_at_05_overall_and_per_label():
    gt, dets = scene_with_every_error()
    result = evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_thrs=[0.5])

    report = tide(gt, dets)

    assert report.baseline_ap == result.stats[0]
    for k, cat in enumerate(result.cat_ids):
        assert report.per_label[cat]["ap"] == float(np.mean(result.precision[0, :, k, 0, -1]))
    assert report.per_label[DOG]["ap"] == pytest.approx(51 / 101)  # half the dogs, at precision 1


@pytest.mark.parametrize(("kind", "edit"), [
    ("bkg", lambda gt, dets: (gt, without(dets, 6))),
    ("both", lambda gt, dets: (gt, without(dets, 4))),
    ("dupe", lambda gt, dets: (gt, without(dets, 1))),
    ("loc", lambda gt, dets: (gt, edited(dets, 2, bbox=BOX))),
    ("cls", lambda gt, dets: (gt, edited(dets, 3, category_id=DOG))),
    ("missed", lambda gt, dets: ({**gt, "annotations": [a for a in gt["annotations"]
                                                        if a["id"] != 6]}, dets)),
])
def test_fixing_one_type_gains_what_the_engine_gives_on_the_fixed_input(kind, edit):
    gt, dets = scene_with_every_error()
    fixed_gt, fixed_dets = edit(copy.deepcopy(gt), copy.deepcopy(dets))

    report = tide(gt, dets)

    assert report.fixed_ap[kind] == pytest.approx(ap50(fixed_gt, fixed_dets), abs=1e-12)
    assert report.delta_ap[kind] > 0
    assert report.delta_ap[kind] == pytest.approx(report.fixed_ap[kind] - report.baseline_ap)


def test_classification_fix_raises_the_true_labels_ap():
    gt, dets = scene_with_every_error()

    report = tide(gt, dets)

    assert report.per_label[DOG]["delta_ap"]["cls"] == pytest.approx(1 - 51 / 101)
    assert {kind for kind, gain in report.per_label[DOG]["delta_ap"].items() if gain} == {"cls"}


def test_fixing_everything_gives_a_perfect_ap():
    gt, dets = scene_with_every_error()

    assert tide(gt, dets).fixed_ap["all"] == pytest.approx(1.0, abs=1e-12)


def test_overall_gain_is_the_mean_of_the_per_label_gains():
    gt, dets = scene_with_every_error()

    report = tide(gt, dets)

    for kind in ERROR_TYPES:
        per_label = [label["delta_ap"][kind] for label in report.per_label.values()]
        assert report.delta_ap[kind] == pytest.approx(np.mean(per_label), abs=1e-12)


def test_absent_error_types_gain_exactly_nothing():
    gt, dets = scene_with_every_error()
    only_loc = [dets[0], dets[2], dets[5], dets[7]]

    report = tide(gt, only_loc)

    assert report.counts == {"cls": 0, "loc": 1, "both": 0, "dupe": 0, "bkg": 0, "missed": 2}
    assert report.delta_ap["loc"] > 0
    assert all(report.delta_ap[kind] == 0.0 for kind in ("cls", "both", "dupe", "bkg"))


def test_perfect_detections_have_no_errors():
    gt, _ = scene_with_every_error()
    perfect = [detection(a["image_id"], a["category_id"], a["bbox"], 0.9)
               for a in gt["annotations"]]

    report = tide(gt, perfect)

    assert report.baseline_ap == pytest.approx(1.0, abs=1e-12)
    assert report.counts == {kind: 0 for kind in ERROR_TYPES}
    assert report.delta_ap == {kind: 0.0 for kind in ERROR_TYPES}


def test_summary_is_plain_data():
    gt, dets = scene_with_every_error()

    summary = tide(gt, dets).summary()

    assert summary["counts"]["loc"] == 1
    assert [label["category_id"] for label in summary["per_label"]] == [CAT, DOG]


# ---------------------------------------------------------------- boundaries and precedence


def one_image(anns: list[tuple[int, list[float]]], dets: list[tuple[int, list[float], float]]
              ) -> tuple[dict, list[dict]]:
    gt = dataset([image(1)], [annotation(n + 1, 1, cat, box) for n, (cat, box) in enumerate(anns)],
                 [CAT, DOG])
    return gt, [detection(1, cat, box, score) for cat, box, score in dets]


def test_iou_exactly_at_the_foreground_threshold_on_a_taken_object_is_a_duplicate():
    gt, dets = one_image([(CAT, BOX)], [(CAT, BOX, 0.9), (CAT, IOU_05, 0.8)])

    assert list(tide(gt, dets).detection_errors) == ["tp", "dupe"]


def test_iou_exactly_at_the_background_threshold_is_not_background():
    gt, dets = one_image([(DOG, BOX)], [(DOG, BOX, 0.9), (CAT, IOU_01, 0.8)])

    assert list(tide(gt, dets).detection_errors) == ["tp", "both"]


def test_a_hair_under_the_background_threshold_is_background():
    under = [0.0, 0.0, float(np.nextafter(10.0, 0.0)), 100.0]
    gt, dets = one_image([(DOG, BOX)], [(DOG, BOX, 0.9), (CAT, under, 0.8)])

    assert list(tide(gt, dets).detection_errors) == ["tp", "bkg"]


def test_localisation_comes_before_classification():
    gt, dets = one_image([(CAT, [0.0, 0.0, 30.0, 100.0]), (DOG, BOX)],
                         [(DOG, BOX, 0.9), (CAT, BOX, 0.8)])

    assert list(tide(gt, dets).detection_errors) == ["tp", "loc"]


def test_classification_comes_before_duplicate():
    gt, dets = one_image([(CAT, BOX), (DOG, IOU_08)], [(CAT, BOX, 0.9), (CAT, IOU_08, 0.8)])

    report = tide(gt, dets)

    assert list(report.detection_errors) == ["tp", "cls"]
    assert list(report.detection_gt) == [0, 1]


def test_loose_box_on_a_found_object_is_localisation_and_fixing_it_drops_it():
    gt, dets = one_image([(CAT, BOX)], [(CAT, IOU_03, 0.9), (CAT, BOX, 0.8)])

    report = tide(gt, dets)

    assert list(report.detection_errors) == ["loc", "tp"]
    assert report.fixed_ap["loc"] == ap50(gt, [dets[1]]) == pytest.approx(1.0)


def test_only_the_best_scored_error_on_an_object_is_fixed_the_rest_are_dropped():
    gt, dets = one_image([(CAT, BOX)], [(CAT, IOU_03, 0.9), (DOG, IOU_08, 0.8),
                                        (CAT, FAR, 0.95)])

    report = tide(gt, dets)

    assert list(report.detection_errors) == ["loc", "cls", "bkg"]
    assert list(report.gt_errors) == ["covered"]
    assert report.counts["missed"] == 0
    assert report.fixed_ap["loc"] == pytest.approx(
        ap50(gt, [edited(dets, 0, bbox=BOX)[0], dets[2]]), abs=1e-12)  # dog box still wrong
    assert report.fixed_ap["cls"] == pytest.approx(ap50(gt, [dets[0], dets[2]]), abs=1e-12)


def test_equal_scores_fix_the_earlier_detection():
    gt, dets = one_image([(CAT, BOX)], [(CAT, IOU_03, 0.5), (CAT, [0.0, 0.0, 40.0, 100.0], 0.5)])

    report = tide(gt, dets)

    assert report.fixed_ap["loc"] == pytest.approx(1.0)  # COCO's precision 1 / (1 + eps)
    assert list(report.detection_gt) == [0, 0]


def test_image_without_ground_truth_makes_every_detection_background():
    gt = dataset([image(1), image(2)], [annotation(1, 1, CAT, BOX)], [CAT])
    dets = [detection(1, CAT, BOX, 0.5), detection(2, CAT, BOX, 0.9)]

    report = tide(gt, dets)

    assert list(report.detection_errors) == ["tp", "bkg"]
    assert report.fixed_ap["bkg"] == pytest.approx(1.0)


def test_crowd_regions_neither_err_nor_go_missing():
    gt = dataset([image(1)], [annotation(1, 1, CAT, BOX, iscrowd=1),
                              annotation(2, 1, CAT, [300.0, 0.0, 50.0, 50.0])], [CAT])
    dets = [detection(1, CAT, [10.0, 10.0, 50.0, 50.0], 0.9)]

    report = tide(gt, dets)

    assert list(report.detection_errors) == ["ignored"]
    assert list(report.gt_errors) == [None, "missed"]


def test_detections_beyond_the_cap_are_not_evaluated():
    gt, dets = one_image([(CAT, BOX)], [(CAT, BOX, 0.9), (CAT, IOU_03, 0.8)])

    report = tide(gt, dets, max_dets=1)

    assert list(report.detection_errors) == ["tp", None]


def test_label_without_ground_truth_has_no_ap_and_no_gain():
    gt, dets = one_image([(CAT, BOX)], [(CAT, BOX, 0.5), (DOG, FAR, 0.9)])

    report = tide(gt, dets)

    assert report.per_label[DOG]["ap"] == -1.0
    assert report.per_label[DOG]["counts"]["bkg"] == 1
    assert report.per_label[DOG]["delta_ap"] == {kind: 0.0 for kind in ERROR_TYPES}


def test_a_label_whose_objects_are_all_missed_and_never_predicted_scores_one_once_fixed():
    gt, dets = one_image([(CAT, BOX), (DOG, FAR)], [(CAT, BOX, 0.9)])

    report = tide(gt, dets)

    assert report.per_label[DOG]["delta_ap"]["missed"] == 1.0
    assert report.fixed_ap["all"] == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- other entry points


def test_other_foreground_threshold_matches_the_engine_there():
    gt, dets = scene_with_every_error()
    dets = [*dets, detection(6, CAT, IOU_08, 0.05)]  # a hit at 0.5, a loose box at 0.85

    report = tide(gt, dets, iou_fg=0.85, iou_bg=0.2)
    result = evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_thrs=[0.85])

    assert report.baseline_ap == result.stats[0]
    assert report.detection_errors[-1] == "loc"
    assert report.detection_errors[2] == "loc"  # 0.3 is still above the background line


def test_from_a_full_coco_result_agrees_with_tide():
    gt, dets = make_case(3)
    result = evaluate(copy.deepcopy(gt), copy.deepcopy(dets))

    from_result = tide_from_result(result)
    direct = tide(gt, dets)

    assert from_result.baseline_ap == result.stats[1] == direct.baseline_ap
    assert from_result.counts == direct.counts
    assert from_result.delta_ap == direct.delta_ap
    assert list(from_result.detection_errors) == list(direct.detection_errors)


def test_result_without_the_threshold_is_refused():
    gt, dets = scene_with_every_error()
    result = evaluate(gt, dets, iou_thrs=[0.75])

    with pytest.raises(ValueError, match=r"no IoU threshold 0\.5"):
        tide_from_result(result)


@pytest.mark.parametrize(("iou_fg", "iou_bg"), [(0.5, 0.6), (1.2, 0.1), (0.5, -0.1)])
def test_thresholds_out_of_order_are_refused(iou_fg, iou_bg):
    gt, dets = scene_with_every_error()

    with pytest.raises(ValueError, match="iou_bg <= iou_fg"):
        tide(gt, dets, iou_fg=iou_fg, iou_bg=iou_bg)


def test_segmentation_baseline_matches_the_engine():
    gt, dets = make_case(5, "segm")

    report = tide(copy.deepcopy(gt), copy.deepcopy(dets), iou_type="segm")

    assert report.baseline_ap == ap50_segm(gt, dets)
    assert report.fixed_ap["all"] == pytest.approx(1.0, abs=1e-12)


def ap50_segm(gt: dict, dets: list[dict]) -> float:
    return float(evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_type="segm",
                          iou_thrs=[0.5]).stats[0])


# ---------------------------------------------------------------- invariants


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_invariants_on_random_scenes(seed):
    gt, dets = make_case(seed)
    result = evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_thrs=[0.5])

    report = tide(gt, dets)

    assert report.baseline_ap == result.stats[0]
    outcomes = [o for o in report.detection_errors if o not in ("tp", "ignored", None)]
    assert len(outcomes) == sum(report.counts[k] for k in ERROR_TYPES if k != "missed")
    assert list(report.gt_errors).count("missed") == report.counts["missed"]
    assert all(gain >= 0 for gain in report.delta_ap.values())
    assert all(gain >= 0 for label in report.per_label.values()
               for gain in label["delta_ap"].values())
    if report.baseline_ap > -1:
        assert report.fixed_ap["all"] == pytest.approx(1.0, abs=1e-12)
