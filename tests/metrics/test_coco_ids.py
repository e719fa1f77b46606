"""Annotation id 0: pycocotools never counts it as matched (it tests ids for truthiness); we do."""

from metrics.coco import evaluate


def scene(first_id: int) -> tuple[dict, list]:
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": first_id, "image_id": 1, "category_id": 1,
                           "bbox": [10, 10, 40, 40], "area": 1600.0, "iscrowd": 0}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9}]
    return gt, dets


def test_ground_truth_with_id_zero_is_matched_like_any_other():
    with_zero = evaluate(*scene(0))
    with_one = evaluate(*scene(1))
    assert with_zero.stats[0] == with_one.stats[0] > 0.99  # 1 less COCO's epsilon
    assert with_zero.matches.det_gt[0].tolist() == [0]  # index of the ground truth, not its id
