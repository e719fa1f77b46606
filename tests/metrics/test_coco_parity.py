"""The COCO engine equals pycocotools' COCOeval on generated scenes, both box and mask.

Each seed draws a scene (see cocogen): crowd regions, every area range and its limits, categories
without ground truth or without detections, empty images, more than 100 detections of one
category on an image, tied scores, fractional coordinates, polygon and RLE masks, and a
detector's faults. Stats, the precision and recall arrays, and per-category AP must equal the
reference to 1e-9.
"""

import copy
import warnings
from collections import Counter

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from metrics.coco import evaluate
from tests.metrics.cocogen import make_case, with_segmentations_as
from tests.metrics.cocoref import differences, faster_coco_eval_stats, reference

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

    found = "\n".join(differences(result, ref))
    assert np.allclose(result.stats, ref.stats, atol=1e-9, rtol=0), found
    assert np.allclose(result.precision, ref.precision, atol=1e-9, rtol=0), found
    assert np.allclose(result.recall, ref.recall, atol=1e-9, rtol=0), found
    assert result.per_category_ap == pytest.approx(ref.per_category_ap, abs=1e-9), found


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_crowded_scene_matches_pycocotools(iou_type):
    """Many crowd regions, many ties, many threshold-hugging detections at once."""
    gt, dets = make_case(7, iou_type, n_images=8, n_categories=3, crowd_rate=0.4, tie_rate=0.7,
                         threshold_rate=0.5, limit_area_rate=0.4, dense_images=2)

    assert not differences(engine(gt, dets, iou_type), reference(gt, dets, iou_type))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@st.composite
def parameters(draw: st.DrawFn, cat_ids: list[int], img_ids: list[int]) -> dict:
    """Any COCOeval parameters, each left at its default or set."""
    thresholds = [*np.linspace(0.5, 0.95, 10).tolist(), 0.3, 0.42, 1.0]
    limits = st.floats(1.0, 20000.0, allow_nan=False)
    drawn = {
        "iou_thrs": st.lists(st.sampled_from(thresholds), min_size=1, max_size=5,
                             unique=True).map(sorted),
        "max_dets": st.lists(st.integers(1, 120), min_size=3, max_size=3, unique=True).map(sorted),
        "cat_ids": st.lists(st.sampled_from(cat_ids), min_size=1, unique=True),
        "img_ids": st.lists(st.sampled_from(img_ids), min_size=1, unique=True),
        "area_rng": st.tuples(limits, limits).map(sorted).map(
            lambda ab: [[0, 1e10], [0, ab[0]], [ab[0], ab[1]], [ab[1], 1e10]]),
        "use_cats": st.booleans(),
    }
    return {name: draw(value) for name, value in drawn.items() if draw(st.booleans())}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), iou_type=st.sampled_from(IOU_TYPES), data=st.data())
def test_any_parameters_match_pycocotools(seed, iou_type, data):
    gt, dets = make_case(seed, iou_type, n_images=6, n_categories=3)
    params = data.draw(parameters([c["id"] for c in gt["categories"]],
                                  [i["id"] for i in gt["images"]]))

    assert not differences(engine(gt, dets, iou_type, **params),
                           reference(gt, dets, iou_type, **params))


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


def test_the_generator_is_deterministic_and_covers_the_edges():
    """The scenes above contain what the parity claims rest on."""
    assert scene(8, "segm") == scene(8, "segm")
    seen: set[str] = set()
    for seed in SEEDS[:12]:
        gt, dets = scene(seed, "segm")
        anns = gt["annotations"]
        per_image_category = Counter((d["image_id"], d["category_id"]) for d in dets)
        scores = Counter(d["score"] for d in dets)
        seen |= {name for name, present in {
            "crowd": any(a["iscrowd"] for a in anns),
            "area 1024": any(a["area"] == 1024 for a in anns),
            "area 9216": any(a["area"] == 9216 for a in anns),
            "area field is not w x h": any(a["area"] != a["bbox"][2] * a["bbox"][3] for a in anns),
            "image without annotations": len({a["image_id"] for a in anns}) < len(gt["images"]),
            "over 100 detections": max(per_image_category.values()) > 100,
            "tied scores": max(scores.values()) > 1,
            "polygons": any(isinstance(a["segmentation"], list) and not a["iscrowd"]
                            for a in anns),
            "multi-part polygons": any(isinstance(a["segmentation"], list)
                                       and len(a["segmentation"]) > 1 for a in anns),
            "compressed RLE": any(isinstance(a["segmentation"], dict)
                                  and isinstance(a["segmentation"]["counts"], str) for a in anns),
            "uncompressed RLE": any(isinstance(a["segmentation"], dict)
                                    and isinstance(a["segmentation"]["counts"], list)
                                    for a in anns),
            "category without ground truth": len({a["category_id"] for a in anns})
            < len(gt["categories"]),
            "results with boxes": "bbox" in dets[0],
            "results without boxes": "bbox" not in dets[0],
        }.items() if present}
    assert len(seen) == 14, seen
