"""Reports of an evaluation, computed from its stored results at any operating point.

    metrics(results, iou=0.5, score=0.5)       # the Evaluation's "metrics" (its schema)
    predictions(results)                       # COCO results list / top labels per image
    badcases(results, iou, score, true_label=, predicted_label=, kind=, iou_type="bbox")
    badcase_page(results, iou, score, ..., offset=0, limit=50)  # (count, one page's entries)
    confusion(results, iou, score, iou_type="bbox")  # label x prediction (+ missed, ...)

Moving the IoU or the score threshold re-reads the stored match tables; nothing is re-run.
Segmentation results with masks are reported twice: boxes as detection is, and masks ("segm":
mask IoU) under metrics' "mask" and with `iou_type="segm"`, so a box that matches while its
mask does not is a mask error only; their badcase count is of mask errors.
Classification reports do not depend on the IoU or the threshold (the prediction is the argmax).
"""

from typing import Any

import numpy as np

from evaluation.analysis import confusion_view
from evaluation.results import Results, coco_for
from metrics import detection_confusion
from metrics.coco_data import image_sizes
from metrics.operating_point import (
    Score,
    ScoreThresholds,
    base_score,
    iou_index,
    operating_point,
    threshold_tables,
)

TOP_PREDICTIONS = 5
WARN_UNDER_IMAGES = 100


def _f(value: Any) -> float:
    return float(value)


def image_count(results: Results) -> int:
    """How many test images the run predicted."""
    if results.is_classification:
        return len(results.document["images"])
    return len(results.document["gt"]["images"])


def warning(results: Results) -> str | None:
    """The "for reference only" warning of small test sets (T10)."""
    count = image_count(results)
    if count >= WARN_UNDER_IMAGES:
        return None
    return (f"The test set has {count} images, under {WARN_UNDER_IMAGES}: this report is for "
            "reference only.")


# --- metrics ----------------------------------------------------------------------------------


def _classification_metrics(results: Results) -> dict[str, Any]:
    report = results.classification
    return {
        "accuracy": report.accuracy,
        "top_k": {str(k): v for k, v in report.top_k.items()},
        "mean_f1": report.mean_f1,
        "macro": {"precision": report.macro.precision, "recall": report.macro.recall,
                  "f1": report.macro.f1},
        "weighted": {"precision": report.weighted.precision, "recall": report.weighted.recall,
                     "f1": report.weighted.f1},
        "per_label": [{"label": row.label, "precision": row.precision, "recall": row.recall,
                       "f1": row.f1, "count": row.support,
                       "predicted_count": row.predicted_count,
                       "misrecognition_rate": row.misrecognition_rate,
                       "image_count": row.image_count} for row in report.per_label],
    }


def _map_at(result: Any, t: int) -> float:
    """Mean AP over labels with ground truth at IoU row t (area all, largest maxDets)."""
    s = result.precision[t, :, :, result.params.all_index, -1]
    per_label = [float(np.mean(s[:, k])) for k in range(s.shape[1]) if np.all(s[:, k] > -1)]
    return float(np.mean(per_label)) if per_label else -1.0


def _detection_metrics(results: Results, result: Any, iou: float, score: Score
                       ) -> dict[str, Any]:
    """The figures of one COCO evaluation (`result`: boxes or masks) at the operating point."""
    point = operating_point(result, iou, score)
    tables = threshold_tables(result, iou)
    ap = result.per_category_ap
    o = point.overall
    per_label = []
    for fig in point.per_label:
        per_label.append({
            "label": results.names[fig.category_id], "category_id": fig.category_id,
            "precision": fig.precision, "recall": fig.recall, "f1": fig.f1,
            "count": fig.gt_count, "detection_count": fig.det_count, "tp": fig.tp,
            "fp": fig.fp, "fn": fig.fn, "ap": ap[fig.category_id],
            "best_threshold": tables[fig.category_id].best()})
    return {
        "iou": iou, "score_threshold": base_score(score),
        "score_thresholds": ({results.names[c]: v for c, v in score.per_label.items()}
                             if isinstance(score, ScoreThresholds) else {}),
        "map": _f(result.stats[0]), "map50": _f(result.stats[1]), "map75": _f(result.stats[2]),
        "map_at_iou": _map_at(result, iou_index(result, iou)),
        "precision": o.precision, "recall": o.recall, "f1": o.f1, "tp": o.tp, "fp": o.fp,
        "fn": o.fn, "count": o.gt_count, "detection_count": o.det_count,
        "coco": {name: _f(v) for name, v in zip(
            ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100",
             "AR_small", "AR_medium", "AR_large"), result.stats, strict=True)},
        "per_label": per_label,
    }


def metrics(results: Results, iou: float, score: Score) -> dict[str, Any]:
    """The report's metrics at an operating point (the schema's shape); segmentation adds "mask",
    the same figures for the masks."""
    if results.is_classification:
        return _classification_metrics(results)
    body = _detection_metrics(results, results.coco, iou, score)
    if results.coco_mask is not None:
        body["mask"] = _detection_metrics(results, results.coco_mask, iou, score)
    return body


# --- predictions --------------------------------------------------------------------------------


def predictions(results: Results) -> list[dict[str, Any]]:
    """COCO results with file names (detection; segmentation adds the RLE "segmentation"), or
    the top labels per image (classification)."""
    doc = results.document
    if not results.is_classification:
        out = []
        for d in doc["dt"]:
            row = {"image_id": d["image_id"], "file_name": results.file_names[d["image_id"]],
                   "category_id": d["category_id"], "label": results.names[d["category_id"]],
                   "bbox": d["bbox"], "score": d["score"]}
            if "segmentation" in d:
                row["segmentation"] = d["segmentation"]
            out.append(row)
        return out
    labels, out = doc["labels"], []
    k = min(TOP_PREDICTIONS, len(labels))
    for image, row in zip(doc["images"], results.scores, strict=True):
        for j in np.argsort(-row, kind="stable")[:k].tolist():
            out.append({"image_id": image["id"], "file_name": image["file_name"],
                        "label": labels[j], "score": float(row[j])})
    return out


# --- badcases -----------------------------------------------------------------------------------


def _classification_badcases(results: Results, true_label: str | None,
                             predicted_label: str | None, kind: str | None
                             ) -> list[dict[str, Any]]:
    doc = results.document
    labels = doc["labels"]
    y_pred = np.argmax(results.scores, axis=1)
    out = []
    for n, (image, truth, guess) in enumerate(zip(doc["images"], doc["y_true"], y_pred.tolist(),
                                                  strict=True)):
        if truth == guess:
            continue
        if true_label is not None and labels[truth] != true_label:
            continue
        if predicted_label is not None and labels[guess] != predicted_label:
            continue
        score = float(results.scores[n, guess])
        out.append({
            "image_id": image["id"], "file_name": image["file_name"],
            "true_label": labels[truth], "predicted_label": labels[guess], "score": score,
            "false_positives": [] if kind == "missed" else [{"label": labels[guess],
                                                            "score": score}],
            "missed": [] if kind == "false_positive" else [{"label": labels[truth]}]})
    return out


def _name_detection_entry(results: Results, entry: dict[str, Any]) -> dict[str, Any]:
    names = results.names
    for fp in entry["false_positives"]:
        fp["label"] = names[fp["category_id"]]
        if fp["overlaps"] is not None:
            fp["overlaps"]["label"] = names[fp["overlaps"]["category_id"]]
    for missed in entry["missed"]:
        missed["label"] = names[missed["category_id"]]
        if missed["predicted"] is not None:
            missed["predicted"]["label"] = names[missed["predicted"]["category_id"]]
    return entry


def badcases(results: Results, iou: float, score: Score, *, true_label: str | None = None,
             predicted_label: str | None = None, kind: str | None = None,
             iou_type: str = "bbox", low_iou: float = 0.1) -> list[dict[str, Any]]:
    """Images with errors at the operating point; labels are names; filters keep what matches.

    A label the report does not know matches nothing (an empty list, not an error).
    `iou_type` "segm" lists false-positive and missed masks (segmentation results only).
    """
    return badcase_page(results, iou, score, true_label=true_label,
                        predicted_label=predicted_label, kind=kind, iou_type=iou_type,
                        low_iou=low_iou)[1]


def badcase_page(results: Results, iou: float, score: Score, *, true_label: str | None = None,
                 predicted_label: str | None = None, kind: str | None = None,
                 iou_type: str = "bbox", low_iou: float = 0.1, offset: int = 0,
                 limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """How many images `badcases` lists, and its entries offset .. offset + limit (None: all);
    for detection only the page's entries are built."""
    if results.is_classification:
        found = _classification_badcases(results, true_label, predicted_label, kind)
        return len(found), found[offset:None if limit is None else offset + limit]
    filters = {}
    for name, label in (("true_label", true_label), ("predicted_label", predicted_label)):
        if label is not None:
            if label not in results.category_of:
                return 0, []
            filters[name] = results.category_of[label]
    sizes = image_sizes(results.document["gt"]) if iou_type == "segm" else None
    count, entries = detection_confusion.badcase_page(
        coco_for(results, iou_type), iou, score, kind=kind, low_iou=low_iou,
        file_names=results.file_names, image_sizes=sizes, offset=offset, limit=limit, **filters)
    return count, [_name_detection_entry(results, e) for e in entries]


def badcase_count(results: Results, iou: float, score: Score, low_iou: float = 0.1) -> int:
    """Images with at least one error at the operating point: of masks when there are masks."""
    segm = not results.is_classification and results.coco_mask is not None
    return badcase_page(results, iou, score, iou_type="segm" if segm else "bbox",
                        low_iou=low_iou, limit=0)[0]


# --- confusion ----------------------------------------------------------------------------------


def confusion(results: Results, iou: float, score: Score, *, iou_type: str = "bbox",
              low_iou: float = 0.1) -> dict[str, Any]:
    """Rows truth, columns prediction, in `labels` order, with recall and image counts;
    `iou_type` "segm" matches masks (segmentation results only)."""
    return confusion_view(results, iou, score, low_iou=low_iou, iou_type=iou_type)
