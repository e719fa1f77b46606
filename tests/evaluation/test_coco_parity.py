"""The COCO engine equals pycocotools' COCOeval on generated scenes, both box and mask.

Each seed draws a scene (see cocogen): crowd regions, every area range and its limits, categories
without ground truth or without detections, empty images, more than 100 detections of one
category on an image, tied scores, fractional coordinates, polygon and RLE masks, and a
detector's faults. Stats, the precision and recall arrays, and per-category AP must equal the
reference to 1e-9.
"""

import copy
import warnings

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from evaluation.metrics.coco import evaluate
from tests.evaluation.cocogen import (
    differences,
    faster_coco_eval_stats,
    make_case,
    reference,
    with_segmentations_as,
)

SEEDS = range(40)
IOU_TYPES = ("bbox", "segm")


def scene(seed: int, iou_type: str, **knobs: object) -> tuple[dict, list[dict]]:
    """5 to 30 images and 1 to 6 categories, varying with the seed."""
    knobs = {"n_images": 5 + seed % 26, "n_categories": 1 + seed % 6, **knobs}
    return make_case(seed, iou_type, **knobs)


def engine(gt: dict, dets: list[dict], iou_type: str, **params: object) -> object:
    return evaluate(copy.deepcopy(gt), copy.deepcopy(dets), iou_type=iou_type, **params)


@pytest.mark.parametrize("iou_type", IOU_TYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_generated_scene_matches_pycocotools(seed, iou_type):
    gt, dets = scene(seed, iou_type)

    result, ref = engine(gt, dets, iou_type), reference(gt, dets, iou_type)

    assert np.allclose(result.stats, ref.stats, atol=1e-9, rtol=0), differences(result, ref)
    assert not differences(result, ref)


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_crowded_scene_matches_pycocotools(iou_type):
    """Many crowd regions, many ties, many threshold-hugging detections at once."""
    gt, dets = make_case(7, iou_type, n_images=8, n_categories=3, crowd_rate=0.4, tie_rate=0.7,
                         threshold_rate=0.5, limit_area_rate=0.4, dense_images=2)

    assert not differences(engine(gt, dets, iou_type), reference(gt, dets, iou_type))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    iou_type=st.sampled_from(IOU_TYPES),
    n_images=st.integers(1, 10),
    n_categories=st.integers(1, 5),
    crowd_rate=st.sampled_from([0.0, 0.1, 0.5]),
    tie_rate=st.sampled_from([0.0, 0.3, 0.9]),
    empty_image_rate=st.sampled_from([0.0, 0.3, 1.0]),
    dense_images=st.integers(0, 2),
)
def test_any_generated_scene_matches_pycocotools(seed, iou_type, **knobs):
    gt, dets = make_case(seed, iou_type, **knobs)

    assert not differences(engine(gt, dets, iou_type), reference(gt, dets, iou_type))


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_no_detections_at_all_gives_zero_where_there_is_ground_truth(iou_type):
    gt, _ = scene(3, iou_type)

    result, ref = engine(gt, [], iou_type), reference(gt, [], iou_type)

    assert not differences(result, ref)
    assert set(np.asarray(result.stats).tolist()) <= {0.0, -1.0}


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_ground_truth_without_annotations_gives_minus_one_everywhere(iou_type):
    gt, dets = scene(4, iou_type)
    gt = {**gt, "annotations": []}

    result = engine(gt, dets, iou_type)

    assert not differences(result, reference(gt, dets, iou_type))
    assert np.all(np.asarray(result.stats) == -1)


def test_segm_masks_as_polygons_or_rle_give_the_same_stats():
    gt, dets = scene(11, "segm", mask_formats=("polygon", "multipolygon"))
    as_rle = with_segmentations_as(gt, "rle")
    as_uncompressed = with_segmentations_as(gt, "rle_uncompressed")

    from_polygons = engine(gt, dets, "segm")
    from_rle = engine(as_rle, dets, "segm")
    from_uncompressed = engine(as_uncompressed, dets, "segm")

    assert not differences(from_polygons, reference(gt, dets, "segm"))
    assert np.array_equal(from_polygons.stats, from_rle.stats)
    assert np.array_equal(from_polygons.stats, from_uncompressed.stats)
    assert np.array_equal(from_polygons.precision, from_rle.precision)


@pytest.mark.parametrize("det_bbox_in_segm", [True, False])
def test_segm_results_with_or_without_boxes_match_pycocotools(det_bbox_in_segm):
    """With a `bbox` in each result, pycocotools takes a detection's area from the box, not the
    mask (loadRes goes by the first result's keys); without one, from the mask."""
    gt, dets = scene(12, "segm", det_bbox_in_segm=det_bbox_in_segm, limit_area_rate=0.3)

    assert not differences(engine(gt, dets, "segm"), reference(gt, dets, "segm"))


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_evaluate_leaves_its_inputs_unchanged(iou_type):
    gt, dets = scene(5, iou_type)
    gt_before, dets_before = copy.deepcopy(gt), copy.deepcopy(dets)

    evaluate(gt, dets, iou_type=iou_type)

    assert gt == gt_before
    assert dets == dets_before


@pytest.mark.parametrize(("seed", "iou_type"), [(1, "bbox"), (2, "segm"), (21, "bbox"),
                                                (22, "segm")])
def test_faster_coco_eval_agrees_with_the_engine(seed, iou_type):
    """A second reference; where it differs from pycocotools, pycocotools decides (noted only)."""
    gt, dets = scene(seed, iou_type)
    ref, faster = reference(gt, dets, iou_type), faster_coco_eval_stats(gt, dets, iou_type)
    result = engine(gt, dets, iou_type)

    if not np.allclose(faster, ref.stats, atol=1e-9, rtol=0):
        warnings.warn(f"faster-coco-eval differs from pycocotools on seed {seed} {iou_type}: "
                      f"{faster.tolist()} vs {ref.stats.tolist()}", stacklevel=1)
        assert not differences(result, ref)
    else:
        assert np.allclose(result.stats, faster, atol=1e-9, rtol=0)
