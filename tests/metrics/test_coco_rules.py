"""The rules of COCO evaluation that are easy to miss, each on a hand-made scene.

Every test checks the rule's number and that pycocotools gives the same.
"""

import copy

import numpy as np
import pytest

from metrics.coco import evaluate
from tests.metrics.cocogen import annotation, dataset, detection, image, make_case
from tests.metrics.cocoref import differences, reference

AP, AP50, AP75, AP_SMALL, AP_MEDIUM, AP_LARGE = range(6)
AR1, AR10, AR100, AR_SMALL, AR_MEDIUM, AR_LARGE = range(6, 12)


def about(value: float) -> object:
    """A rule's number, up to rounding: precision 1 is 1 / (1 + eps) in the reference."""
    return pytest.approx(value, abs=1e-12)


def evaluated(gt: dict, dets: list[dict], iou_type: str = "bbox", **params: object) -> object:
    """The engine's result, after checking it equals pycocotools' on the same input."""
    result = evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_type=iou_type, **params)
    found = differences(result, reference(gt, dets, iou_type, **params))
    assert not found, "\n".join(found)
    return result


def one_object(det_box: list[float], gt_box: list[float] | None = None) -> tuple[dict, list]:
    gt_box = gt_box or [0.0, 0.0, 20.0, 10.0]
    gt = dataset([image(1)], [annotation(1, 1, 1, gt_box)], [1])
    return gt, [detection(1, 1, det_box, 0.9)]


# ---------------------------------------------------------------- IoU thresholds


def test_iou_exactly_at_the_threshold_is_a_match():
    gt, dets = one_object([0.0, 0.0, 10.0, 10.0])  # IoU 100 / 200 = 0.5 exactly

    stats = evaluated(gt, dets).stats

    assert stats[AP50] == about(1.0)
    assert stats[AP75] == about(0.0)
    assert stats[AP] == about(0.1)


def test_iou_a_hair_below_the_threshold_is_no_match():
    gt, dets = one_object([0.0, 0.0, float(np.nextafter(10.0, 0.0)), 10.0])

    assert evaluated(gt, dets).stats[AP50] == about(0.0)


def test_ninth_threshold_is_0_8999999999999999_not_0_9():
    # computed as pycocotools does, this IoU is 0.8999999999999999: below 0.9, at the threshold
    gt, dets = one_object([0.0, 0.0, 9.899999999999999, 1.0], gt_box=[0.0, 0.0, 11.0, 1.0])

    result = evaluated(gt, dets)

    assert result.stats[AP] == about(0.9)
    assert result.recall[8, 0, 0, -1] == 1.0
    assert result.recall[9, 0, 0, -1] == 0.0


def test_iou_threshold_of_one_accepts_a_perfect_match():
    gt, dets = one_object([0.0, 0.0, 20.0, 10.0])

    result = evaluated(gt, dets, iou_thrs=[0.5, 1.0])

    assert result.recall[:, 0, 0, -1].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- greedy matching


def two_overlapping_objects(later_is_right: bool) -> tuple[dict, list]:
    left = annotation(2, 1, 1, [0.0, 0.0, 10.0, 10.0])
    right = annotation(1, 1, 1, [2.0, 0.0, 10.0, 10.0])
    gt = dataset([image(1)], [left, right] if later_is_right else [right, left], [1])
    dets = [
        detection(1, 1, [1.0, 0.0, 10.0, 10.0], 0.9),  # IoU 90/110 with both
        detection(1, 1, [4.0, 0.0, 10.0, 10.0], 0.8),  # IoU .67 with right, .43 with left
    ]
    return gt, dets


def test_equal_iou_goes_to_the_ground_truth_later_in_input_order():
    # the first detection takes the right object, leaving the second nothing: recall 1/2
    stats = evaluated(*two_overlapping_objects(later_is_right=True)).stats
    assert stats[AP50] == about(51 / 101)
    # the first detection takes the left object, the second the right one
    assert evaluated(*two_overlapping_objects(later_is_right=False)).stats[AP50] == about(1.0)


def test_regular_ground_truth_is_preferred_over_a_crowd_region():
    person = annotation(1, 1, 1, [0.0, 0.0, 10.0, 10.0])
    crowd = annotation(2, 1, 1, [0.0, 0.0, 100.0, 100.0], iscrowd=1)
    gt = dataset([image(1)], [crowd, person], [1])
    # IoU 0.72 with the person, 1.0 with the crowd (intersection / detection area)
    dets = [detection(1, 1, [0.0, 0.0, 10.0, 7.2], 0.9)]

    result = evaluated(gt, dets)

    assert result.stats[AP50] == about(1.0)
    # the person is matched at IoU .50 to .70; above, the crowd is (ignored)
    assert result.stats[AR100] == about(0.5)


def test_crowd_region_absorbs_many_detections_as_neither_true_nor_false_positives():
    person = annotation(1, 1, 1, [200.0, 200.0, 40.0, 80.0])
    crowd = annotation(2, 1, 1, [0.0, 0.0, 150.0, 100.0], iscrowd=1)
    gt = dataset([image(1)], [person, crowd], [1])
    in_the_crowd = [detection(1, 1, [10.0 * i, 20.0, 12.0, 30.0], 0.95) for i in range(6)]
    dets = [*in_the_crowd, detection(1, 1, [200.0, 200.0, 40.0, 80.0], 0.5)]

    result = evaluated(gt, dets)

    assert result.stats[AP] == about(1.0)
    assert result.stats[AR1] == about(0.0)  # the best-scored detection per image is in the crowd


def test_category_with_only_crowd_ground_truth_is_minus_one():
    crowd = annotation(1, 1, 2, [0.0, 0.0, 100.0, 100.0], iscrowd=1)
    person = annotation(2, 1, 1, [200.0, 200.0, 40.0, 80.0])
    gt = dataset([image(1)], [crowd, person], [1, 2])
    dets = [detection(1, 2, [0.0, 0.0, 50.0, 50.0], 0.9),
            detection(1, 1, [200.0, 200.0, 40.0, 80.0], 0.9)]

    result = evaluated(gt, dets)

    assert result.per_category_ap[2] == -1.0
    assert result.stats[AP] == about(1.0)


# ---------------------------------------------------------------- maxDets


def test_max_dets_caps_each_image_and_category_not_each_image():
    gt = dataset([image(1)], [
        annotation(1, 1, 1, [0.0, 0.0, 50.0, 50.0]),
        annotation(2, 1, 1, [100.0, 0.0, 50.0, 50.0]),
        annotation(3, 1, 2, [200.0, 200.0, 50.0, 50.0]),
    ], [1, 2])
    dets = [detection(1, 1, [0.0, 0.0, 50.0, 50.0], 0.9),
            detection(1, 1, [100.0, 0.0, 50.0, 50.0], 0.8),
            detection(1, 2, [200.0, 200.0, 50.0, 50.0], 0.7)]

    stats = evaluated(gt, dets).stats

    # with one detection each, category 1 recalls 1 of its 2 objects and category 2 all
    assert stats[AR1] == about(0.75)
    assert stats[AR10] == about(1.0)


@pytest.mark.parametrize(("true_positive_at", "recall"), [(99, 1.0), (100, 0.0)])
def test_only_the_first_100_of_tied_detections_count(true_positive_at, recall):
    gt = dataset([image(1)], [annotation(1, 1, 1, [300.0, 300.0, 40.0, 40.0])], [1])
    dets = [detection(1, 1, [float(i), 0.0, 20.0, 20.0], 0.5) for i in range(150)]
    dets[true_positive_at] = detection(1, 1, [300.0, 300.0, 40.0, 40.0], 0.5)

    assert evaluated(gt, dets).stats[AR100] == about(recall)


# ---------------------------------------------------------------- areas


def object_with_area(area: float) -> tuple[dict, list]:
    box = [10.0, 10.0, 40.0, 40.0]
    gt = dataset([image(1)], [annotation(1, 1, 1, box, area=area)], [1])
    return gt, [detection(1, 1, box, 0.9)]


def test_area_exactly_1024_counts_as_small_and_medium():
    stats = evaluated(*object_with_area(32.0**2)).stats

    assert [stats[AP_SMALL], stats[AP_MEDIUM], stats[AP_LARGE]] == about([1.0, 1.0, -1.0])


def test_area_exactly_9216_counts_as_medium_and_large():
    stats = evaluated(*object_with_area(96.0**2)).stats

    assert [stats[AP_SMALL], stats[AP_MEDIUM], stats[AP_LARGE]] == about([-1.0, 1.0, 1.0])


def test_ground_truth_area_comes_from_the_area_field_not_the_box():
    stats = evaluated(*object_with_area(500.0)).stats  # a 40 x 40 box, a small mask

    assert [stats[AP_SMALL], stats[AP_MEDIUM]] == about([1.0, -1.0])


def test_unmatched_detection_outside_the_area_range_is_ignored():
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),
            detection(1, 1, [200.0, 200.0, 120.0, 120.0], 0.9)]  # large, matches nothing

    stats = evaluated(gt, dets).stats

    assert stats[AP_SMALL] == about(1.0)
    assert stats[AP] == about(0.5)


def test_unmatched_detection_of_area_exactly_1024_is_a_false_positive_in_small_and_medium():
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0], area=1024.0)], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),
            detection(1, 1, [200.0, 200.0, 32.0, 32.0], 0.9)]

    stats = evaluated(gt, dets).stats

    assert [stats[AP_SMALL], stats[AP_MEDIUM]] == about([0.5, 0.5])


def test_results_without_an_area_field_get_the_box_area():
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),
            detection(1, 1, [200.0, 200.0, 40.0, 40.0], 0.9)]  # medium: no false positive in small
    assert all("area" not in det for det in dets)

    assert evaluated(gt, dets).stats[AP_SMALL] == about(1.0)


def test_an_area_field_in_the_results_is_recomputed_as_pycocotools_does():
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),
            {**detection(1, 1, [200.0, 200.0, 40.0, 40.0], 0.9), "area": 100.0}]

    assert evaluated(gt, dets).stats[AP_SMALL] == about(1.0)


# ---------------------------------------------------------------- categories and images


def test_category_without_ground_truth_is_minus_one_and_left_out_of_the_means():
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0])], [1, 2])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),
            detection(1, 2, [50.0, 50.0, 20.0, 20.0], 0.9)]

    result = evaluated(gt, dets)

    assert result.stats[AP] == about(1.0)
    assert result.per_category_ap == about({1: 1.0, 2: -1.0})
    assert np.all(result.precision[:, :, 1] == -1)
    assert np.all(result.recall[:, 1] == -1)


def test_image_with_ground_truth_but_no_detections_lowers_recall():
    gt = dataset([image(1), image(2)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0]),
                                        annotation(2, 2, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5)]

    stats = evaluated(gt, dets).stats

    assert stats[AR100] == about(0.5)
    assert stats[AP] == about(51 / 101)  # precision 1 up to recall 0.50, 0 beyond


def test_detections_on_an_image_without_annotations_are_false_positives():
    gt = dataset([image(1), image(2)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),
            detection(2, 1, [10.0, 10.0, 20.0, 20.0], 0.9)]

    assert evaluated(gt, dets).stats[AP50] == about(0.5)


# ---------------------------------------------------------------- scores and recall thresholds


def test_tied_scores_keep_input_order_within_an_image():
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    hit = detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5)
    miss = detection(1, 1, [100.0, 100.0, 20.0, 20.0], 0.5)

    assert evaluated(gt, [hit, miss]).stats[AP50] == about(1.0)
    assert evaluated(gt, [miss, hit]).stats[AP50] == about(0.5)


def test_tied_scores_across_images_follow_image_id_order_not_input_order():
    gt = dataset([image(5), image(3)], [annotation(1, 3, 1, [10.0, 10.0, 20.0, 20.0])], [1])
    dets = [detection(5, 1, [10.0, 10.0, 20.0, 20.0], 0.5),  # false positive, on image 5
            detection(3, 1, [10.0, 10.0, 20.0, 20.0], 0.5)]  # true positive, on image 3

    assert evaluated(gt, dets).stats[AP50] == about(1.0)


def test_recall_of_exactly_7_in_20_does_not_reach_the_0_35_threshold():
    objects = [annotation(i + 1, 1, 1, [30.0 * i, 0.0, 20.0, 20.0]) for i in range(20)]
    gt = dataset([image(1)], objects, [1])
    hits = [detection(1, 1, [30.0 * i, 0.0, 20.0, 20.0], 1.0 - 0.01 * i) for i in range(20)]
    dets = [*hits[:7], detection(1, 1, [0.0, 300.0, 20.0, 20.0], 0.935), *hits[7:]]

    precision = evaluated(gt, dets).precision[0, :, 0, 0, -1]

    assert precision[34] == about(1.0)
    assert precision[35] == about(20 / 21)  # recall 7/20 = 0.35 < 0.35000000000000003


# ---------------------------------------------------------------- without categories


def test_without_categories_tied_detections_are_ordered_by_category_then_input():
    """use_cats=False pools each image's detections category by category (pycocotools
    concatenates them in category id order), then sorts by score with a stable sort."""
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0]),
                              annotation(2, 1, 2, [100.0, 100.0, 20.0, 20.0])], [1, 2])
    dets = [detection(1, 2, [300.0, 300.0, 20.0, 20.0], 0.5),  # a miss, of category 2
            detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5)]  # a hit, of category 1

    stats = evaluated(gt, dets, use_cats=False).stats

    assert stats[AR1] == about(0.5)  # the hit, of category 1, comes first


def test_without_categories_pooling_follows_the_category_order_given():
    """pycocotools sorts cat_ids only when it uses categories; without, it pools in the order
    given, so tied detections of category 2 come before those of category 1 here."""
    gt = dataset([image(1)], [annotation(1, 1, 1, [10.0, 10.0, 20.0, 20.0]),
                              annotation(2, 1, 2, [100.0, 100.0, 20.0, 20.0])], [1, 2])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.5),  # a hit, of category 1
            detection(1, 2, [300.0, 300.0, 20.0, 20.0], 0.5)]  # a miss, of category 2

    stats = evaluated(gt, dets, use_cats=False, cat_ids=[2, 1]).stats

    assert stats[AR1] == about(0.0)  # the miss, of category 2, comes first


def test_without_categories_equal_iou_goes_to_the_later_ground_truth_in_category_order():
    left = annotation(1, 1, 2, [0.0, 0.0, 10.0, 10.0])
    right = annotation(2, 1, 1, [2.0, 0.0, 10.0, 10.0])
    gt = dataset([image(1)], [left, right], [1, 2])  # in category order: right, then left
    dets = [detection(1, 1, [1.0, 0.0, 10.0, 10.0], 0.9),  # IoU 90/110 with both
            detection(1, 1, [4.0, 0.0, 10.0, 10.0], 0.8)]  # IoU .67 with right, .43 with left

    assert evaluated(gt, dets, use_cats=False).stats[AP50] == about(1.0)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("params", [
    {"iou_thrs": [0.5, 0.75], "max_dets": [1, 5, 100]},
    {"max_dets": [1, 5, 20]},
    {"cat_ids": "some"},
    {"img_ids": "some"},
    {"area_rng": [[0, 1e10], [0, 16**2], [16**2, 64**2], [64**2, 1e10]]},
    {"area_rng": [[0, 1e10], [0, 2000], [2000, 1e10]],
     "area_rng_lbl": ["all", "small", "large"]},
    {"area_rng": [[0, 1024], [1024, 9216], [9216, 1e10], [0, 1e10]],
     "area_rng_lbl": ["small", "medium", "large", "all"]},
    {"use_cats": False},
], ids=["iou_thrs", "max_dets", "cat_ids", "img_ids", "area_rng", "area_rng_lbl", "all_last",
        "use_cats"])
def test_custom_parameters_match_pycocotools(params, iou_type):
    gt, dets = make_case(17, iou_type, n_images=10, n_categories=4)
    if params.get("cat_ids") == "some":
        params = {"cat_ids": [c["id"] for c in gt["categories"]][1:3]}
    if params.get("img_ids") == "some":
        params = {"img_ids": [i["id"] for i in gt["images"]][::2]}

    evaluated(gt, dets, iou_type, **params)


def test_custom_iou_thresholds_size_the_precision_array():
    gt, dets = make_case(17, "bbox", n_images=10, n_categories=4)

    result = evaluated(gt, dets, iou_thrs=[0.5, 0.75], max_dets=[1, 5, 100])

    assert result.precision.shape == (2, 101, 4, 4, 3)
    assert result.recall.shape == (2, 4, 4, 3)


def test_max_dets_without_100_leaves_the_maxdets_100_summaries_at_minus_one():
    # pycocotools' summarize() reads AP@[.5:.95] at maxDets=100 whatever the parameters say
    gt, dets = make_case(17, "bbox", n_images=10, n_categories=4)

    stats = evaluated(gt, dets, max_dets=[1, 5, 20]).stats

    assert stats[AP] == -1.0
    assert stats[AP50] > 0


# ---------------------------------------------------------------- annotation id 0


def test_annotation_id_zero_is_rejected_or_handled_as_an_ordinary_id():
    """pycocotools never counts a ground truth with id 0 as matched; we must not copy that."""
    gt = dataset([image(1)], [annotation(0, 1, 1, [10.0, 10.0, 20.0, 20.0]),
                              annotation(1, 1, 1, [50.0, 50.0, 20.0, 20.0])], [1])
    dets = [detection(1, 1, [10.0, 10.0, 20.0, 20.0], 0.9),
            detection(1, 1, [50.0, 50.0, 20.0, 20.0], 0.8)]
    try:
        result = evaluate(copy.deepcopy(gt), dets)
    except (ValueError, KeyError) as error:
        assert "0" in str(error) and "id" in str(error).lower()
        return
    renumbered = copy.deepcopy(gt)
    for ann in renumbered["annotations"]:
        ann["id"] += 1
    assert not differences(result, reference(renumbered, dets))
    assert result.stats[AP] == about(1.0)
