"""The worker side of a task: claim an attempt, train through training_runtime, report events.

One attempt runs in one worker thread. It claims the task (queued, same attempt) by appending
`TaskStarted`, keeps a lease alive (and the billing meter's heartbeat) from a side thread that
also picks up stop requests, reports progress as events (at most one `TaskProgressed` per
TASK_PROGRESS_INTERVAL_S, every epoch), and ends the task with exactly one of `TaskSucceeded`,
`TaskStopped` or `TaskFailed`, then stops the billing meter. Checkpoints are copied to object
storage, so an attempt on another worker continues where the last one stopped.
"""

import dataclasses
import logging
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Max
from django.utils import timezone

from billing import api as billing
from core import context
from core.errors import VersionConflict
from core.nodes import node_name
from eventlog.aggregates import retry_on_conflict
from eventlog.models import Event
from eventlog.store import Stream, append
from modelregistry import api as modelregistry
from tasks import checkpoints
from tasks.aggregates import TaskAggregate
from tasks.commands import RESOURCE_TYPE
from tasks.events import (
    TaskEpochCompleted,
    TaskFailed,
    TaskProgressed,
    TaskStageChanged,
    TaskStarted,
    TaskStopped,
    TaskSucceeded,
)
from tasks.models import Task, TaskLease
from training_runtime.device import pick_device

log = logging.getLogger("tasks.runner")


def _stream(task: Task) -> Stream:
    return Stream.of(task.tenant_id, "task", task.id)


def report(task: Task, *events: object) -> None:
    """Append worker events at the stream's head (a user's stop request may come in between)."""
    stream = _stream(task)

    def at_head() -> None:
        head = Event.objects.filter(stream_id=stream.id).aggregate(v=Max("version"))["v"] or 0
        append(stream, head, list(events))

    retry_on_conflict(at_head)


class _Lease(threading.Thread):
    """Heartbeats the task lease and the billing meter; notices stop requests, and notices when
    the lease check has given this attempt up for lost (a newer attempt owns the task then)."""

    def __init__(self, task: Task, attempt: int, meter_id: str, node: str):
        super().__init__(name=f"lease-{task.id}", daemon=True)
        self.task, self.attempt, self.meter_id, self.node = task, attempt, meter_id, node
        self.stop_reason = ""
        self.superseded = False
        self.finished = threading.Event()
        self.last_look = time.monotonic()
        TaskLease.objects.update_or_create(
            task_id=task.id, defaults={"attempt": attempt, "node": node,
                                       "last_seen_at": timezone.now()})

    def is_set(self) -> bool:
        """The cancel token the training loop checks every step; it looks for a request itself
        when a look is due, so a request it sees stops training at that very step."""
        if not self.stop_reason and (
                time.monotonic() - self.last_look >= settings.TASK_STOP_POLL_S):
            self.look()
        return bool(self.stop_reason)

    def look(self) -> None:
        """Pick up a stop request, or the news that this attempt is no longer the task's."""
        self.last_look = time.monotonic()
        row = Task.objects.unscoped().filter(id=self.task.id).values_list(
            "stop_requested", "attempt", "state").first()
        if row is None:
            return
        requested, attempt, state = row
        if attempt != self.attempt or state != "running":
            self.superseded, self.stop_reason = True, "superseded"
        elif requested:
            self.stop_reason = requested

    def beat(self) -> None:
        now = timezone.now()
        TaskLease.objects.filter(task_id=self.task.id, attempt=self.attempt).update(
            node=self.node, last_seen_at=now)
        if self.meter_id and not self.superseded:
            billing.heartbeat(self.meter_id, at=now)

    def run(self) -> None:
        interval = settings.TASK_HEARTBEAT_S
        # The training thread looks at every due step; this thread covers the phases without
        # steps (data loading, validation, export), where a coarser poll is enough.
        poll = min(interval, max(settings.TASK_STOP_POLL_S, 0.05))
        last_beat = time.monotonic()
        try:
            while not self.finished.wait(poll):
                self.look()
                if time.monotonic() - last_beat >= interval:
                    self.beat()
                    last_beat = time.monotonic()
        finally:
            connection.close()


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


def claim(task_id: str, attempt: int, node: str) -> tuple[Task, str] | None:
    """Mark the attempt started; None when it is not this attempt's turn (a duplicate or
    late delivery, or the task was stopped while queued)."""
    task = Task.objects.unscoped().filter(id=task_id).first()
    if task is None:
        return None
    aggregate = TaskAggregate.load(task.tenant_id, task_id)
    if aggregate.state != "queued" or aggregate.attempt != attempt:
        log.info("task %s attempt %s not claimed: it is %s at attempt %s", task_id, attempt,
                 aggregate.state, aggregate.attempt)
        return None
    try:
        aggregate.append(TaskStarted(attempt=attempt, node=node))
    except VersionConflict:
        return None
    task.refresh_from_db()
    return task, aggregate.meter_id


def run_attempt(task_id: str, attempt: int) -> str:
    """Run one attempt of a task to its end; returns the state it ended in (or "skipped")."""
    node = node_name()
    claimed = claim(task_id, attempt, node)
    if claimed is None:
        return "skipped"
    task, meter_id = claimed
    with context.scope(actor=f"worker:{node}", correlation_id=str(task.id)):
        return _run_claimed(task, attempt, meter_id, node)


def _run_claimed(task: Task, attempt: int, meter_id: str, node: str) -> str:
    from tasklogs import api as tasklogs

    lease = _Lease(task, attempt, meter_id, node)
    lease.start()
    work_dir = Path(settings.DATA_DIR) / "tasks" / str(task.id)
    prefix = f"tasks/{task.tenant_id}/{task.id}"
    ending: object
    try:
        with ExitStack() as stack:
            stack.enter_context(tasklogs.capture(task.tenant_id, task.id, node))
            log.info("attempt %s of task %s (%s, %s) started on %s", attempt, task.name,
                     task.scenario, task.model_name, node)
            ending = _train(task, work_dir, prefix, lease, stack)
    except Exception as exc:  # a failure of ours must still end the task and its billing
        log.exception("task %s failed", task.id)
        ending = TaskFailed(code="internal_error", message=f"{type(exc).__name__}: {exc}"[:2000])
    finally:
        lease.finished.set()
        lease.join(timeout=5)
    if lease.superseded:  # given up for lost while alive: the newer attempt owns the task
        log.warning("attempt %s of task %s was superseded; its result is dropped", attempt,
                    task.id)
        return "superseded"
    reason = getattr(ending, "stop_reason", None) or (
        "failed" if isinstance(ending, TaskFailed) else "completed")
    with transaction.atomic():  # whoever sees the task ended sees its bill settled
        report(task, ending)
        billing.stop_resource(task.tenant_id, RESOURCE_TYPE, task.id, reason=reason)
    TaskLease.objects.filter(task_id=task.id, attempt=attempt).delete()
    if settings.TASK_LOGS_PERSIST:
        tasklogs.persist(task.tenant_id, task.id)
    close_old_connections()
    return {TaskSucceeded: "succeeded", TaskStopped: "stopped"}.get(type(ending), "failed")


def _train(task: Task, work_dir: Path, prefix: str, lease: _Lease, stack: ExitStack) -> object:
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
        best_metrics = next((h["metrics"] for h in result.history
                             if h["epoch"] == result.best_epoch), {})
        results = {"model_id": model_id, "artifact_key": key, "labels": outcome.labels,
                   "metrics": {**best_metrics, "validation": outcome.validation},
                   "input_size": list(outcome.input_size),
                   "validation_fraction": job.validation_fraction, "split_seed": job.seed}
    elapsed = result.history[-1]["elapsed_s"] if result.history else 0.0
    if result.stop_reason in ("completed", "target_reached") and results:
        return TaskSucceeded(
            stop_reason="target_reached" if result.stop_reason == "target_reached" else None,
            best_metric=result.best_metric, elapsed_s=elapsed, warnings=outcome.warnings,
            **results)
    reason = lease.stop_reason or ("max_duration" if result.stop_reason == "max_duration"
                                   else "user")
    return TaskStopped(stop_reason=reason, best_metric=result.best_metric, elapsed_s=elapsed,
                       **results)
