"""COCO bbox evaluation time: ours against pycocotools and faster-coco-eval, same data, same run.

A synthetic COCO-sized set (default 5,000 images, 80 categories, ~35k ground-truth boxes with
~1% crowd, ~100k detections from jittered, relabelled, duplicated and background boxes) is
evaluated by all three; the stats must be identical (<= 1e-9) and the times are printed side by
side. Also times re-deriving P/R/F1 at another IoU and score threshold from the stored match
tables (the report slider), and reports peak memory of our evaluation.

Usage: .venv/bin/python bench/eval_coco.py [--images 5000] [--skip-pycocotools]
"""

import argparse
import contextlib
import copy
import io
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic(images: int, categories: int, seed: int = 0) -> tuple[dict, list]:
    """Ground truth and detections shaped like a real detector's output on COCO."""
    rng = np.random.default_rng(seed)
    imgs = [{"id": i + 1, "width": 640, "height": 480} for i in range(images)]
    cats = [{"id": c + 1, "name": f"class{c}"} for c in range(categories)]
    anns, dets = [], []
    for img in imgs:
        for _ in range(rng.poisson(7)):
            scale = rng.choice([16, 48, 160])
            w, h = rng.uniform(0.5, 1.5, 2) * scale
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat = int(rng.integers(1, categories + 1))
            crowd = int(rng.random() < 0.01)
            anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": cat,
                         "bbox": [x, y, w, h], "area": float(w * h * 0.8), "iscrowd": crowd})
            for _ in range(rng.poisson(2.2)):
                jitter = rng.normal(0, 0.1, 4) * [w, h, w, h]
                label = cat if rng.random() < 0.85 else int(rng.integers(1, categories + 1))
                dets.append({"image_id": img["id"], "category_id": label,
                             "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]),
                                      max(1.0, h + jitter[3])],
                             "score": float(np.round(rng.beta(4, 2), 3))})
        for _ in range(rng.poisson(5)):
            w, h = rng.uniform(8, 200, 2)
            dets.append({"image_id": img["id"], "category_id": int(rng.integers(1, categories + 1)),
                         "bbox": [rng.uniform(0, 600), rng.uniform(0, 400), w, h],
                         "score": float(np.round(rng.beta(1.5, 4), 3))})
    return {"images": imgs, "categories": cats, "annotations": anns}, dets


def run_pycocotools(gt: dict, dets: list) -> tuple[np.ndarray, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(dets), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.array(evaluation.stats), time.perf_counter() - started


def run_faster(gt: dict, dets: list) -> tuple[np.ndarray, float]:
    from faster_coco_eval import COCO, COCOeval_faster

    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(gt)
        evaluation = COCOeval_faster(coco, coco.loadRes(dets), "bbox", print_function=print)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.array(evaluation.stats), time.perf_counter() - started


def run_ours(gt: dict, dets: list) -> tuple[object, float, float]:
    """Timed untraced; peak memory from a second, traced run (tracing slows Python down)."""
    from metrics.coco import evaluate

    started = time.perf_counter()
    result = evaluate(gt, dets, iou_type="bbox")
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    evaluate(gt, dets, iou_type="bbox")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, elapsed, peak


def run_slider(result: object) -> float:
    """Milliseconds to re-derive P/R/F1 per label and the confusion matrix at a new IoU and
    score (the worst of a few slider positions)."""
    from metrics.detection_confusion import detection_confusion
    from metrics.operating_point import operating_point

    started = time.perf_counter()
    detection_confusion(result, iou=0.5, score=0.5)  # first view: computes the image pairs
    print(f"first confusion view (computes every image's pair IoUs once): "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    worst = 0.0
    for iou, score in [(0.5, 0.5), (0.75, 0.3), (0.6, 0.7), (0.95, 0.05)]:
        started = time.perf_counter()
        operating_point(result, iou=iou, score=score)
        detection_confusion(result, iou=iou, score=score)
        worst = max(worst, (time.perf_counter() - started) * 1000)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--skip-pycocotools", action="store_true")
    args = parser.parse_args()
    gt, dets = synthetic(args.images, args.categories)
    print(f"{len(gt['images'])} images, {len(gt['categories'])} categories, "
          f"{len(gt['annotations'])} ground-truth boxes, {len(dets)} detections", flush=True)

    ours, ours_s, peak = run_ours(gt, dets)
    slider_ms = run_slider(ours)
    faster_stats, faster_s = run_faster(gt, dets)
    figures = {"ours_s": ours_s, "faster_coco_eval_s": faster_s, "peak_bytes": peak}
    print(f"ours              {ours_s:7.2f} s   peak traced memory {peak / 2**20:.0f} MiB; "
          f"moving the IoU/score slider (P/R/F1 + confusion): {slider_ms:.1f} ms (goal < 200 ms)")
    figures["slider_ms"] = slider_ms
    print(f"faster-coco-eval  {faster_s:7.2f} s   ratio ours/faster {ours_s / faster_s:.2f} x "
          f"(goal <= 1.0)")
    same_as_faster = bool(np.allclose(ours.stats, faster_stats, atol=1e-9, rtol=0))
    print(f"stats equal to faster-coco-eval: {same_as_faster}")
    if not args.skip_pycocotools:
        reference, reference_s = run_pycocotools(gt, dets)
        figures["pycocotools_s"] = reference_s
        same = bool(np.allclose(ours.stats, reference, atol=1e-9, rtol=0))
        print(f"pycocotools       {reference_s:7.2f} s   ratio ours/pycocotools "
              f"{ours_s / reference_s:.2f} x; stats equal (<= 1e-9): {same}")
        figures["identical_to_pycocotools"] = same
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "eval_coco.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
