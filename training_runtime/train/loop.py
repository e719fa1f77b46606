"""The training loop: epochs of steps, evaluation, checkpoints, stop conditions, progress.

One process, one device by default. With a `DistributedContext` (distributed.setup_from_env)
of several processes: the model is wrapped in DDP on the context's device, each rank trains on
its shard of every epoch's order (per-rank batch `batch_size`, global batch `batch_size *
world_size`), reported losses are averaged over ranks, cancellation and the time limit are
agreed by all ranks each step, every rank evaluates the full validation set, and only rank 0
writes checkpoints and calls callbacks (the others wait at a barrier until the file is whole).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from training_runtime.train import checkpoint as ckpt
from training_runtime.train.batches import EpochLoaders, batch_size_of, eval_loader, to_device
from training_runtime.train.config import TrainConfig
from training_runtime.train.distributed import (
    DistributedContext,
    barrier,
    wrap_model,
)
from training_runtime.train.events import (
    EpochProgress,
    StepProgress,
    Stopped,
    StopReason,
    dispatch,
)
from training_runtime.train.resources import ResourceMonitor
from training_runtime.train.schedule import LRSchedule, build_optimizer
from training_runtime.train.steps import (
    EvaluateFn,
    LossFn,
    StepFn,
    classification_accuracy,
    classification_step,
)
from training_runtime.train.stop import (
    OOM_ERRORS,
    Deadline,
    TrainingFailed,
    non_finite_loss,
    out_of_memory,
    target_reached,
)


@dataclass
class TrainResult:
    """How training ended; `history` holds one dict per completed epoch (resumed ones too)."""

    best_metric: float | None
    best_epoch: int | None
    stop_reason: StopReason
    epochs_run: int
    global_step: int
    checkpoint_path: Path | None
    best_checkpoint_path: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    # True when the run stopped before its first epoch ended and best_checkpoint_path holds the
    # weights of that moment, validated (`best_metrics`), rather than an epoch's.
    partial: bool = False
    best_metrics: dict[str, float] = field(default_factory=dict)


def train(model: nn.Module, train_dataset: Dataset, val_dataset: Dataset | None,
          config: TrainConfig, *, loss_fn: LossFn | None = None, step_fn: StepFn | None = None,
          evaluate_fn: EvaluateFn | None = None, collate_fn: Callable[..., Any] | None = None,
          callbacks: Iterable[object] = (), cancel: Any = None,
          resume_from: Path | str | None = None,
          clock: Callable[[], float] = time.monotonic,
          distributed: DistributedContext | None = None) -> TrainResult:
    """Train `model` in place per `config`; raise TrainingFailed on a non-finite loss or OOM.

    Classification by default (cross-entropy on (inputs, labels), top-1 accuracy); pass
    `step_fn(model, batch) -> loss` (e.g. a detection loss dict summed) and `evaluate_fn(model,
    loader) -> metrics` for other tasks. `cancel` is anything with `is_set()` (CancelToken,
    threading.Event). `resume_from` continues a `last.pt` checkpoint exactly.

    `distributed` (from `distributed.setup_from_env`) trains data-parallel: `config.batch_size`
    is per rank, every rank must call `train` with the same arguments (and the same
    `resume_from`); only rank 0 calls `callbacks` and writes checkpoints.
    """
    if loss_fn is not None and step_fn is not None:
        raise ValueError("pass loss_fn or step_fn, not both")
    if len(train_dataset) == 0:
        raise ValueError("the training dataset is empty")
    trainer = _Trainer(model, train_dataset, val_dataset, config,
                       step_fn=step_fn or classification_step(loss_fn),
                       evaluate_fn=evaluate_fn or classification_accuracy,
                       collate_fn=collate_fn, callbacks=tuple(callbacks), cancel=cancel,
                       clock=clock, distributed=distributed)
    if resume_from is not None:
        trainer.resume(ckpt.load_checkpoint(resume_from))
    else:
        ckpt.seed_everything(config.seed)
    return trainer.run()


def _device_of(config: TrainConfig) -> torch.device:
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingFailed("device_unavailable",
                             f"device {config.device!r} was asked for but CUDA is not available "
                             "on this worker; use device 'cpu' or a GPU worker.")
    return device


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


class _Trainer:
    """The state of one run: counters, best metric, history; one method per phase."""

    def __init__(self, model: nn.Module, train_dataset: Dataset, val_dataset: Dataset | None,
                 config: TrainConfig, *, step_fn: StepFn, evaluate_fn: EvaluateFn,
                 collate_fn: Callable[..., Any] | None, callbacks: tuple[object, ...],
                 cancel: Any, clock: Callable[[], float],
                 distributed: DistributedContext | None = None) -> None:
        self.rank = distributed.rank if distributed is not None else 0
        self.world_size = distributed.world_size if distributed is not None else 1
        self.is_main = self.rank == 0
        # Only rank 0 reports progress; the others train silently.
        self.config, self.cancel, self.clock = config, cancel, clock
        self.callbacks = callbacks if self.is_main else ()
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.step_fn, self.evaluate_fn, self.collate_fn = step_fn, evaluate_fn, collate_fn
        self.device = distributed.device if distributed is not None else _device_of(config)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model = model.to(self.device)
        if config.use_channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.world_size > 1:
            if config.freeze_backbone_epochs:
                # DDP registers its gradient hooks once, for the parameters that train then.
                raise ValueError("freeze_backbone_epochs needs a single process (world_size 1)")
            self.model = wrap_model(self.model, self.device)
        # Built over every parameter before any is frozen, so unfrozen ones join it later.
        self.optimizer = build_optimizer(self.model, config)
        self.scaler = torch.amp.GradScaler("cuda") if config.use_amp else None
        # Each rank holds ceil(n / W) samples of every epoch (shard_order pads to equal shares).
        self.steps_per_epoch = math.ceil(
            math.ceil(len(train_dataset) / self.world_size) / config.batch_size)
        self.schedule = LRSchedule.from_config(config, self.steps_per_epoch)
        self.last_path = config.checkpoint_dir / ckpt.LAST_NAME
        self.best_path = config.checkpoint_dir / ckpt.BEST_NAME
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.loss_sum, self.loss_samples = 0.0, 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.partial_metrics: dict[str, float] | None = None
        self.history: list[dict[str, Any]] = []
        self.elapsed_before = 0.0
        self.lr = self.schedule.lr(0)
        self.loaders = EpochLoaders(train_dataset, batch_size=config.batch_size, seed=config.seed,
                                    num_workers=config.num_workers, collate_fn=collate_fn,
                                    pin_memory=self.device.type == "cuda",
                                    persistent_workers=config.persistent_workers,
                                    rank=self.rank, world_size=self.world_size)
        self.val_loader: Any = None

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from a `last.pt` state: weights, optimiser, counters, RNGs."""
        if state.get("steps_per_epoch") != self.steps_per_epoch:
            raise ValueError(f"checkpoint has {state.get('steps_per_epoch')} steps per epoch, this "
                             f"run {self.steps_per_epoch}: same dataset and batch size needed")
        _unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.loss_sum, self.loss_samples = state["epoch_loss_sum"], state["epoch_samples"]
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        self.history = list(state["history"])
        self.elapsed_before = state["elapsed_s"]
        self.lr = state["lr"]
        ckpt.restore_rng(state["rng"])

    def run(self) -> TrainResult:
        """Epochs until done or a stop condition; failures raise TrainingFailed."""
        self.deadline = Deadline(self.config.max_duration_s, self.clock, self.elapsed_before)
        self.monitor = ResourceMonitor(self.device)
        self.session_steps = 0
        self.session_samples, self.session_train_s = 0, 0.0
        try:
            while self.epoch < self.config.epochs:
                reason = self._train_epoch() or self._end_epoch()
                if reason is not None:
                    return self._stop(reason)
            return self._stop("completed")
        finally:
            self.loaders.close()
            self.val_loader = None

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.use_amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _apply_freeze(self) -> None:
        """Backbone parameters train only from epoch `freeze_backbone_epochs` (0-based) on."""
        if not self.config.freeze_backbone_epochs:
            return
        frozen = self.epoch < self.config.freeze_backbone_epochs
        for name, parameter in _unwrap(self.model).named_parameters():
            if name.startswith(self.config.frozen_prefixes):
                parameter.requires_grad_(not frozen)

    def _train_epoch(self) -> StopReason | None:
        self._apply_freeze()
        loader = self.loaders.epoch(self.epoch, self.step_in_epoch)
        self.model.train()
        self.tick = self.clock()
        for batch in loader:
            reason = self._agreed_stop()
            if reason is not None:
                return reason
            self._step(batch)
        return None

    def _agreed_stop(self) -> StopReason | None:
        """Cancellation or the time limit; with several ranks, any rank's stop stops them all."""
        cancelled = self.cancel is not None and self.cancel.is_set()
        expired = not cancelled and self.deadline.expired()
        if self.world_size > 1:
            flags = torch.tensor([float(cancelled), float(expired)], device=self.device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            cancelled, expired = bool(flags[0] > 0), bool(flags[1] > 0)
        if cancelled:
            return "cancelled"
        if expired:
            return "max_duration"
        return None

    def _step(self, batch: Any) -> None:
        self.lr = self.schedule.apply(self.optimizer, self.global_step)
        batch = to_device(batch, self.device, channels_last=self.config.use_channels_last)
        n = batch_size_of(batch)
        self.optimizer.zero_grad(set_to_none=True)
        try:
            loss, value = self._forward(batch)
            if not math.isfinite(value):
                raise non_finite_loss(value, self.global_step + 1, self.epoch + 1, self.lr)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
        except OOM_ERRORS as exc:
            self._release_cuda_memory()
            raise out_of_memory(self.config.batch_size, self.epoch + 1, self.global_step + 1,
                                "training") from exc
        self.global_step += 1
        self.step_in_epoch += 1
        self.loss_sum += value * n
        self.loss_samples += n
        now = self.clock()
        self.session_train_s += now - self.tick
        self.tick = now
        self.session_steps += 1
        self.session_samples += n * self.world_size
        train_s = self.session_train_s
        throughput = self.session_samples / train_s if train_s > 0 else 0.0
        dispatch(self.callbacks, "on_step", StepProgress(
            epoch=self.epoch + 1, step=self.step_in_epoch, global_step=self.global_step,
            total_steps=self.schedule.total_steps, loss=value, lr=self.lr,
            samples_per_s=throughput, eta_s=self._eta(), elapsed_s=self.deadline.elapsed()))

    def _forward(self, batch: Any) -> tuple[torch.Tensor, float]:
        """The loss and its global value; with several ranks, a failure on one fails them all.

        A rank whose forward pass raises still joins the loss all-reduce, with a failure flag,
        so its peers stop at once with `peer_failed` instead of waiting in the next collective
        until the process-group timeout. (A failure inside backward, where DDP's gradient
        all-reduce is under way, cannot be agreed on this way: the failing process exits and
        torchrun stops its peers.)
        """
        if self.world_size == 1:
            with self._autocast():
                loss = self.step_fn(self.model, batch)
            return loss, float(loss.detach().float())
        failure: BaseException | None = None
        try:
            with self._autocast():
                loss = self.step_fn(self.model, batch)
            detached = loss.detach().float().reshape(())
        except Exception as exc:
            failure, detached = exc, torch.zeros((), device=self.device)
        oom = failure is not None and isinstance(failure, OOM_ERRORS)
        flags = torch.stack([detached, torch.tensor(float(failure is not None)).to(detached),
                             torch.tensor(float(oom)).to(detached)])
        dist.all_reduce(flags, op=dist.ReduceOp.SUM)
        if failure is not None:
            raise failure
        failed = int(flags[1])
        if failed:
            if flags[2] > 0:
                raise out_of_memory(self.config.batch_size, self.epoch + 1,
                                    self.global_step + 1, "training on another rank")
            raise TrainingFailed(
                "peer_failed",
                f"{failed} of {self.world_size} ranks failed in the forward pass at step "
                f"{self.global_step + 1} (epoch {self.epoch + 1}); the failing rank's log "
                "has the reason. This rank stopped with it.")
        return loss, float(flags[0]) / self.world_size

    def _eta(self) -> float:
        if self.session_steps == 0:
            return 0.0
        per_step = self.deadline.session_elapsed() / self.session_steps
        return max(0.0, per_step * (self.schedule.total_steps - self.global_step))

    def _release_cuda_memory(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _evaluate(self) -> dict[str, float]:
        if self.val_dataset is None:
            return {}
        loader = self.val_loader or eval_loader(
            self.val_dataset, batch_size=self.config.batch_size,
            num_workers=self.config.num_workers, collate_fn=self.collate_fn,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.config.persistent_workers)
        if self.config.persistent_workers:
            self.val_loader = loader  # its workers stay up for the next evaluation
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                # The bare module: every rank evaluates everything, with no DDP collectives.
                metrics = {k: float(v)
                           for k, v in self.evaluate_fn(_unwrap(self.model), loader).items()}
        except OOM_ERRORS as exc:
            self._release_cuda_memory()
            raise out_of_memory(self.config.batch_size, self.epoch + 1, self.global_step,
                                "evaluation") from exc
        finally:
            self.model.train()
        if self.config.metric_name not in metrics:
            raise ValueError(f"evaluate_fn returned {sorted(metrics)}, without the configured "
                             f"metric_name {self.config.metric_name!r}")
        return metrics

    def _end_epoch(self) -> StopReason | None:
        metrics = self._evaluate()
        train_loss = self.loss_sum / max(1, self.loss_samples)
        self.epoch += 1
        self.step_in_epoch, self.loss_sum, self.loss_samples = 0, 0.0, 0
        value = metrics.get(self.config.metric_name)
        improved = value is not None and (self.best_metric is None or value > self.best_metric)
        if improved:
            self.best_metric, self.best_epoch = value, self.epoch
        elapsed = self.deadline.elapsed()
        val_loss = metrics.get("loss")
        self.history.append({"epoch": self.epoch, "train_loss": train_loss, "val_loss": val_loss,
                             "metrics": metrics, "lr": self.lr, "elapsed_s": elapsed})
        # Checkpoints first: whoever hears of the epoch can rely on it being saved (a worker
        # that dies right after reporting it resumes after it, not before).
        if improved:
            self._save(self.best_path, self._best_state())
        self._save(self.last_path, self._state())
        dispatch(self.callbacks, "on_epoch", EpochProgress(
            epoch=self.epoch, train_loss=train_loss, metrics=metrics, lr=self.lr,
            elapsed_s=elapsed, eta_s=self._eta(), resources=self.monitor.sample(),
            val_loss=val_loss))
        if target_reached(self.best_metric, self.config.target_metric):
            return "target_reached"
        patience = self.config.early_stopping_patience
        if (patience is not None and self.best_epoch is not None
                and self.epoch - self.best_epoch >= patience and self.epoch < self.config.epochs):
            return "early_stopped"
        return None

    def _save_partial(self) -> None:
        """Validate and keep the current weights of a run stopped inside its first epoch.

        A long epoch cut by the time limit or the user would otherwise leave no model at all;
        these weights are marked partial, and any finished epoch replaces them as best.pt.
        """
        if (self.best_epoch is not None or self.global_step == 0 or self.history
                or self.val_dataset is None):
            return
        metrics = self._evaluate()
        self.partial_metrics = metrics
        self.best_metric = metrics.get(self.config.metric_name)
        state = self._best_state()
        state.update(epoch=0, partial=True, global_step=self.global_step)
        self._save(self.best_path, state)

    def _stop(self, reason: StopReason) -> TrainResult:
        if reason in ("cancelled", "max_duration"):
            self._save(self.last_path, self._state())  # before the partial best: resumes
            self._save_partial()                        # still see no best epoch
        partial = self.partial_metrics is not None
        dispatch(self.callbacks, "on_stop", Stopped(reason, self.best_metric, self.epoch,
                                                    partial))
        best_metrics = self.partial_metrics or next(
            (h["metrics"] for h in self.history if h["epoch"] == self.best_epoch), {})
        return TrainResult(
            best_metric=self.best_metric, best_epoch=self.best_epoch, stop_reason=reason,
            epochs_run=self.epoch, global_step=self.global_step,
            checkpoint_path=self.last_path if self.last_path.exists() else None,
            best_checkpoint_path=(self.best_path if self.best_epoch is not None or partial
                                  else None),
            history=list(self.history), partial=partial, best_metrics=dict(best_metrics))

    def _save(self, path: Path, state: dict[str, Any]) -> None:
        if self.is_main:
            ckpt.save_checkpoint(path, state)
            dispatch(self.callbacks, "on_checkpoint", path)
        if self.world_size > 1:
            barrier()  # the other ranks may read `path` (resume, checkpoint_path) once it is whole

    def _best_state(self) -> dict[str, Any]:
        return {"format": ckpt.CHECKPOINT_FORMAT, "model": _unwrap(self.model).state_dict(),
                "metric_name": self.config.metric_name, "metric": self.best_metric,
                "epoch": self.best_epoch, "config": self.config.to_dict()}

    def _state(self) -> dict[str, Any]:
        return {
            "format": ckpt.CHECKPOINT_FORMAT,
            "model": _unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "steps_per_epoch": self.steps_per_epoch,
            "epoch_loss_sum": self.loss_sum, "epoch_samples": self.loss_samples,
            "best_metric": self.best_metric, "best_epoch": self.best_epoch,
            "history": list(self.history), "elapsed_s": self.deadline.elapsed(), "lr": self.lr,
            "rng": ckpt.capture_rng(include_cuda=self.device.type == "cuda"),
            "config": self.config.to_dict(),
        }
