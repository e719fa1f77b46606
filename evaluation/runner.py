"""The worker side of an evaluation: claim it, predict the test set, store results, report.

The run claims the evaluation (queued) by appending `EvaluationStarted`, downloads the model's
artifact and the dataset, predicts every image in batches (detections down to score 0, so that
reports can move the threshold later), stores the results file, and ends with exactly one of
`EvaluationSucceeded` or `EvaluationFailed`; the billing meter is stopped in the same
transaction, whatever happened. While it predicts it holds the run's lease through
core.lifecycle (renewed with the billing meter's heartbeat; a stop or a run given up for lost
ends it after the current batch) and reports `EvaluationProgressed` (throttled).
"""

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from billing import api as billing
from core import context, lifecycle
from core.errors import NotFound, VersionConflict
from core.nodes import node_name
from evaluation import analysis, reports, results
from evaluation.aggregates import EvaluationAggregate
from evaluation.commands import RESOURCE_TYPE
from evaluation.events import EvaluationFailed, EvaluationStarted, EvaluationSucceeded
from evaluation.models import Evaluation
from evaluation.worker_commands import Run
from modelregistry import api as modelregistry
from modelregistry.contracts import ModelRef
from training_runtime.device import pick_device

log = logging.getLogger("evaluation.runner")
STOP_CHECK_S = 2.0  # how often the run looks for a stop (between batches, and in the lease)


class EvaluationStoppedMeanwhile(Exception):
    """The run was stopped (e.g. out of funds) while the worker was predicting."""


class EvaluationError(Exception):
    """A run that cannot complete for a reason the user can act on; `code` names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def claim(evaluation_id: str, node: str) -> tuple[Evaluation, EvaluationAggregate] | None:
    """Mark the run started; None when it is not queued (a duplicate or late delivery)."""
    row = Evaluation.objects.unscoped().filter(id=evaluation_id).first()
    if row is None:
        return None
    try:
        aggregate = EvaluationAggregate.load(row.tenant_id, evaluation_id)
    except NotFound:
        return None
    if aggregate.state != "queued":
        log.info("evaluation %s not claimed: it is %s", evaluation_id, aggregate.state)
        return None
    try:
        aggregate.append(EvaluationStarted(node=node))
    except VersionConflict:
        return None
    row.refresh_from_db()
    return row, aggregate


def run(evaluation_id: str) -> str:
    """Run an evaluation to its end; the state it ended in, or "skipped"."""
    node = node_name()
    claimed = claim(evaluation_id, node)
    if claimed is None:
        return "skipped"
    row, aggregate = claimed
    # The lease says this worker is alive; the lease sweep retries a run whose lease is stale
    # (its worker died), and this run gives up if that happened while it was alive.
    meter_id = aggregate.meter_id
    with (context.scope(actor=f"worker:{node}", correlation_id=str(row.id)),
          lifecycle.hold(lease_key(row.id), take=True,
                         on_beat=(lambda at: billing.heartbeat(meter_id, at=at)) if meter_id
                         else None,
                         look=lambda: _stop_look(row.id), look_every_s=STOP_CHECK_S) as lease):
        try:
            ending: object = _evaluate(row, Run(aggregate), lease)
        except EvaluationStoppedMeanwhile:
            log.info("evaluation %s was stopped while running", row.id)
            return "stopped"
        except EvaluationError as exc:
            ending = EvaluationFailed(code=exc.code, message=str(exc)[:2000])
        except Exception as exc:  # a failure of ours must still end the run and its billing
            log.exception("evaluation %s failed", row.id)
            ending = EvaluationFailed(code="internal_error",
                                      message=f"{type(exc).__name__}: {exc}"[:2000])
        failed = isinstance(ending, EvaluationFailed)
        lease.finish()  # no heartbeat for a meter the ending stops
        with transaction.atomic():  # whoever sees the run ended sees its bill settled
            current = EvaluationAggregate.load(row.tenant_id, row.id)
            if current.state != "running" or current.attempt != aggregate.attempt:
                return current.state  # stopped after its last batch, or given up for lost
            current.append(ending)
            billing.stop_resource(row.tenant_id, RESOURCE_TYPE, row.id,
                                  reason="failed" if failed else "completed")
    return "failed" if failed else "succeeded"


def _artifact(model: ModelRef, into: Path) -> Path:
    try:
        return modelregistry.fetch_artifact(model, into)
    except modelregistry.ArtifactUnavailable as exc:
        raise EvaluationError("model_unavailable", str(exc)) from None


def _predictor(folder: Path, device: str, image_size: int | None) -> Any:
    import dataclasses

    from training_runtime.export.artifact import ArtifactError
    from training_runtime.predict import Predictor

    try:
        predictor = Predictor.load(folder, device)
        if image_size:  # a validation task's image size replaces the artifact's input size
            predictor.manifest = dataclasses.replace(predictor.manifest,
                                                     input_size=(image_size, image_size))
        return predictor
    except ArtifactError as exc:
        raise EvaluationError("model_unavailable", f"The model's artifact cannot be loaded: "
                              f"{exc}") from None


def lease_key(evaluation_id: object) -> str:
    """The lease of a running evaluation."""
    return f"evaluation:{evaluation_id}"


def _stop_look(evaluation_id: object) -> str | None:
    """The run's stop look (core.lifecycle): stopped (the user, or billing short of funds), or
    SUPERSEDED once the run was given up for lost."""
    state = Evaluation.objects.unscoped().filter(id=evaluation_id).values_list(
        "state", flat=True).first()
    if state == "stopped":
        return "stopped"
    return None if state in (None, "running") else lifecycle.SUPERSEDED  # None: no news


class _Progress:
    """Called after every batch with the images done: ends the run when a stop came (or when it
    was given up for lost), and reports how far it got."""

    def __init__(self, run: Run | None, lease: Any = None) -> None:
        self.run, self.lease = run, lease

    def check(self) -> None:
        """Raise when the run must end now."""
        if self.lease is not None and self.lease.is_set():
            raise EvaluationStoppedMeanwhile()

    def __call__(self, done: int, total: int) -> None:
        self.check()
        if self.run is not None:
            self.run.progressed(done, total)


def _device(row: Evaluation) -> str:
    # a cpu-spec evaluation is billed as one: it never takes the GPU
    return pick_device(settings.TASK_DEVICE, gpu_wanted=row.options.get("device") == "gpu")


def _test_index(index: Any, options: dict[str, Any], model: ModelRef) -> Any:
    """The samples to evaluate: all, or the hold-out split training validated on (the split
    the model's training made, as the registry recorded it)."""
    if options.get("split") != "holdout":
        return index
    from training_runtime.data.dataset import DatasetIndex

    _train, held_out = index.split(model.validation_fraction, seed=model.split_seed)
    return DatasetIndex(index.root, index.scenario, index.labels, held_out)


def _evaluate(row: Evaluation, run: Run | None = None, lease: Any = None
              ) -> EvaluationSucceeded:
    from datasets import api as datasets
    from training_runtime.data.read import read_dataset
    from training_runtime.predict import InvalidImageError

    started = time.monotonic()
    model = modelregistry.get_unscoped(row.model_id)
    dataset = datasets.get_unscoped(row.dataset_id)
    if model is None or dataset is None:
        raise EvaluationError("not_found", "The model or the dataset no longer exists.")
    beat = _Progress(run, lease)
    beat.check()
    options = row.options
    with tempfile.TemporaryDirectory(prefix="evaluation-") as tmp:
        predictor = _predictor(_artifact(model, Path(tmp)), _device(row),
                               options.get("image_size"))
        with datasets.materialize(dataset) as root:
            index, _report = read_dataset(root, dataset.kind, dataset.format)
            if index is None or not index.samples:
                raise EvaluationError("dataset_unreadable", "The dataset cannot be read or has "
                                      "no images; validate it again.")
            index = _test_index(index, options, model)
            try:
                batch = int(options.get("batch_size") or results.BATCH)
                if row.scenario == "classification":
                    document = results.classification_document(index, root, predictor, beat,
                                                               batch)
                else:
                    document = results.detection_document(index, root, dataset.format,
                                                          predictor, beat, batch)
            except InvalidImageError as exc:
                raise EvaluationError("invalid_image", str(exc)) from None
    key = results.results_key(row.tenant_id, row.id)
    results.store(key, document)
    parsed = results.parse(document)
    iou, score = row.iou, analysis.score_of(parsed, row.score_threshold, row.score_thresholds)
    summary = {"dataset": str(dataset.id), "dataset_name": dataset.name,
               "split": options.get("split", "all"),
               "image_count": reports.image_count(parsed),
               "duration_s": round(time.monotonic() - started, 3),
               "badcase_count": reports.badcase_count(parsed, iou, score, row.low_iou),
               "warning": reports.warning(parsed)}
    return EvaluationSucceeded(summary=summary, metrics=reports.metrics(parsed, iou, score),
                               results_key=key)
