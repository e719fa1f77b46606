"""The worker side of a task: claim an attempt, train through training_runtime, report events.

One attempt runs in one worker thread. It claims the task (queued, same attempt) by appending
`TaskStarted`, holds the attempt's lease through core.lifecycle (a side thread renews it with
the billing meter's heartbeat and picks up stop requests), reports progress as events (at
most one `TaskProgressed` per TASK_PROGRESS_INTERVAL_S, every epoch), each write a command of
tasks.worker_commands, and ends the task with exactly one of `TaskSucceeded`,
`TaskStopped` or `TaskFailed`, then stops the billing meter. Checkpoints are copied to object
storage, so an attempt on another worker continues where the last one stopped.
"""

import dataclasses
import logging
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from billing import api as billing
from core import context, lifecycle
from core.nodes import node_name
from modelregistry import api as modelregistry
from tasks import checkpoints, worker_commands
from tasks.events import (
    TaskEpochCompleted,
    TaskFailed,
    TaskProgressed,
    TaskStageChanged,
    TaskStopped,
    TaskSucceeded,
)
from tasks.models import Task
from training_runtime.device import pick_device

log = logging.getLogger("tasks.runner")


# The attempt each running task's thread holds (task id -> attempt): its writes go through it.
_attempts: dict[object, worker_commands.Attempt] = {}


def report(task: Task, *events: object) -> bool:
    """Append worker events while this attempt owns the task (tasks.worker_commands checks);
    False when refused (the attempt was given up for lost)."""
    attempt = _attempts.get(task.id)
    if attempt is None:  # not run by this process's runner: claim-free reports are refused
        return False
    return attempt.report(*events)


def _stop_look(task: Task, attempt: int) -> str | None:
    """The attempt's stop look (core.lifecycle): a stop request's reason, or SUPERSEDED once
    the task moved on without it."""
    row = Task.objects.unscoped().filter(id=task.id).values_list(
        "stop_requested", "attempt", "state").first()
    if row is None:
        return None
    requested, current, state = row
    if current != attempt or state != "running":
        return lifecycle.SUPERSEDED
    return requested or None


def _meter_beat(meter_id: str) -> object:
    """The billing meter's heartbeat, at the instant the lease was renewed."""
    return (lambda at: billing.heartbeat(meter_id, at=at)) if meter_id else None


class _Reporter:
    """training_runtime callbacks -> task events, progress throttled."""

    def __init__(self, task: Task, storage_prefix: str):
        self.task = task
        self.storage_prefix = storage_prefix
        self.last_progress = 0.0
        self.best: float | None = None
        self.started = False
        self.progress = 0.0

    def on_step(self, progress: Any) -> None:
        now = time.monotonic()
        self.progress = progress.global_step / max(1, progress.total_steps)
        if self.started and now - self.last_progress < settings.TASK_PROGRESS_INTERVAL_S:
            return
        self.started, self.last_progress = True, now
        report(self.task, TaskProgressed(
            progress=round(self.progress, 4), epoch=progress.epoch,
            step=progress.step, eta_s=round(progress.eta_s, 1),
            elapsed_s=round(progress.elapsed_s, 1), loss=_finite(progress.loss),
            lr=progress.lr, samples_per_s=round(progress.samples_per_s, 2)))

    def on_epoch(self, progress: Any) -> None:
        metric = progress.metrics.get(self.task.metric_name)
        if metric is not None and (self.best is None or metric > self.best):
            self.best = metric
        report(self.task, TaskEpochCompleted(
            epoch=progress.epoch, train_loss=_finite(progress.train_loss),
            metrics={k: _finite(v) for k, v in progress.metrics.items()}, lr=progress.lr,
            elapsed_s=round(progress.elapsed_s, 1), eta_s=round(progress.eta_s, 1),
            progress=round(self.progress, 4), best_metric=self.best,
            resources=_resources(progress.resources)))

    def on_checkpoint(self, path: Path) -> None:
        if path.name == "last.pt":
            checkpoints.upload(path, f"{self.storage_prefix}/last.pt")

    def on_stop(self, stopped: Any) -> None:
        pass


def _device() -> str:
    return pick_device(settings.TASK_DEVICE)


def _finite(value: float) -> float:
    value = float(value)
    return value if value == value and abs(value) != float("inf") else -1.0


def _resources(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    return {k: v for k, v in dataclasses.asdict(usage).items() if v is not None}


claim = worker_commands.claim


def run_attempt(task_id: str, attempt: int) -> str:
    """Run one attempt of a task to its end; returns the state it ended in (or "skipped")."""
    node = node_name()
    claimed = claim(task_id, attempt, node)
    if claimed is None:
        return "skipped"
    with context.scope(actor=f"worker:{node}", correlation_id=str(claimed.task.id)):
        _attempts[claimed.task.id] = claimed
        try:
            return _run_claimed(claimed, node)
        finally:
            _attempts.pop(claimed.task.id, None)


def _run_claimed(claimed: worker_commands.Attempt, node: str) -> str:
    from tasklogs import api as tasklogs

    task, attempt = claimed.task, claimed.number
    work_dir = Path(settings.DATA_DIR) / "tasks" / str(task.id)
    prefix = f"tasks/{task.tenant_id}/{task.id}"
    ending: object
    with lifecycle.hold(worker_commands.lease_key(task.id), take=True,
                        stale_after_s=settings.TASK_LEASE_TIMEOUT_S,
                        every_s=settings.TASK_HEARTBEAT_S, on_beat=_meter_beat(claimed.meter_id),
                        look=lambda: _stop_look(task, attempt),
                        look_every_s=settings.TASK_STOP_POLL_S) as lease:
        assert lease is not None  # taken over: the claim on the stream decided
        try:
            with ExitStack() as stack:
                stack.enter_context(tasklogs.capture(task.tenant_id, task.id, node))
                log.info("attempt %s of task %s (%s, %s) started on %s", attempt, task.name,
                         task.scenario, task.model_name, node)
                ending = _train(task, work_dir, prefix, lease, stack)
        except Exception as exc:  # a failure of ours must still end the task and its billing
            log.exception("task %s failed", task.id)
            ending = TaskFailed(code="internal_error",
                                message=f"{type(exc).__name__}: {exc}"[:2000])
        finally:
            lease.finish()  # no heartbeat for a meter the ending stops
        reason = getattr(ending, "stop_reason", None) or (
            "failed" if isinstance(ending, TaskFailed) else "completed")
        # Ended while the lease is still held, so that no sweep takes it for lost meanwhile;
        # refused when it was given up for lost while alive (the newer attempt owns the task).
        if lease.superseded or not claimed.finish(ending, reason):
            log.warning("attempt %s of task %s was superseded; its result is dropped",
                        attempt, task.id)
            return "superseded"
    if settings.TASK_LOGS_PERSIST:
        tasklogs.persist(task.tenant_id, task.id)
    close_old_connections()
    return {TaskSucceeded: "succeeded", TaskStopped: "stopped"}.get(type(ending), "failed")


def _train(task: Task, work_dir: Path, prefix: str, lease: lifecycle.Held,
           stack: ExitStack) -> object:
    from datasets import api as datasets
    from training_runtime.pipeline import JobDataError, TrainingJob, run_job
    from training_runtime.train import TrainingFailed

    checkpoint = work_dir / "checkpoints" / "last.pt"
    if not checkpoint.exists() and checkpoints.download(f"{prefix}/last.pt", checkpoint):
        log.info("continuing from the checkpoint in storage")
    train_set = datasets.get_unscoped(task.train_dataset_id)
    test_set = datasets.get_unscoped(task.test_dataset_id) if task.test_dataset_id else None
    if train_set is None or (task.test_dataset_id and test_set is None):
        raise LookupError(f"a dataset of task {task.id} is no longer in the read model")
    train_root = stack.enter_context(datasets.materialize(train_set))
    test_root = stack.enter_context(datasets.materialize(test_set)) if test_set else None
    config = task.config
    job = TrainingJob(
        scenario=task.scenario, model_name=task.model_name, train_root=train_root,
        data_format=train_set.format, test_root=test_root,
        test_format=test_set.format if test_set else None, work_dir=work_dir,
        epochs=config.get("epochs"), lr=config.get("learning_rate"),
        batch_size=config.get("batch_size"), warmup_epochs=config.get("warmup_epochs"),
        target_metric=task.target_metric, max_duration_s=task.max_duration_s,
        seed=config.get("seed") or 0, device=_device())
    report(task, TaskStageChanged(stage="training"))
    try:
        outcome = run_job(job, callbacks=[_Reporter(task, prefix)], cancel=lease)
    except TrainingFailed as exc:
        return TaskFailed(code=exc.reason_code, message=exc.message)
    except JobDataError as exc:
        return TaskFailed(code=exc.code, message=str(exc))
    result = outcome.result
    results: dict[str, Any] = {}
    if outcome.artifact_path is not None:
        report(task, TaskStageChanged(stage="exporting"))
        model_id = str(uuid.uuid4())
        key = modelregistry.store_artifact(outcome.artifact_path, task.tenant_id, model_id)
        formats = modelregistry.store_formats(outcome.artifact_path, task.tenant_id, model_id,
                                              output_path=task.output_path)
        # best_metrics: the best epoch's, or those of the weights a stop inside the first
        # epoch kept (a partial model, flagged in its metrics).
        best_metrics = result.best_metrics or next((h["metrics"] for h in result.history
                                                    if h["epoch"] == result.best_epoch), {})
        partial = {"partial": True} if outcome.partial else {}
        results = {"model_id": model_id, "artifact_key": key, "labels": outcome.labels,
                   "metrics": {**best_metrics, "validation": outcome.validation, **partial},
                   "input_size": list(outcome.input_size),
                   "validation_fraction": job.validation_fraction, "split_seed": job.seed,
                   "formats": formats}
    elapsed = result.history[-1]["elapsed_s"] if result.history else 0.0
    if result.stop_reason in ("completed", "target_reached", "early_stopped") and results:
        return TaskSucceeded(  # early_stopped: no better metric for the patience's epochs
            stop_reason=None if result.stop_reason == "completed" else result.stop_reason,
            best_metric=result.best_metric, elapsed_s=elapsed, warnings=outcome.warnings,
            **results)
    reason = lease.stop_reason or ("max_duration" if result.stop_reason == "max_duration"
                                   else "user")
    return TaskStopped(stop_reason=reason, best_metric=result.best_metric, elapsed_s=elapsed,
                       **results)
