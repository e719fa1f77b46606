"""An instance of a service: a worker that loads the model once and answers micro-batches.

    run(service_id, number)     # from the serving actor; returns why it ended

A prefetch thread takes requests from the service's queue (serving.transport) as they come and
decodes them while the model runs the batch before. When the model is free it takes what is
ready, up to SERVING_MAX_BATCH, after waiting at most the batch window for more when the
previous batch had company; it predicts the images that decoded in one forward pass and answers
each request (an image that does not decode gets its own 400 reason; the others are
unaffected). Between batches, at most every CONTROL_S, it
reads the service row: it leaves when the service stops, switches model when an update asks
(requests wait in the queue meanwhile, none is dropped), keeps the billing meter's heartbeat and
stops the service when its maximum running time has passed. The last instance to leave a
stopped service answers what is still queued with 409.
"""

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from billing import api as billing
from core import context
from core.nodes import node_name
from serving import commands
from serving.models import Service
from serving.transport import decode_image, transport

log = logging.getLogger("serving.instance")
CONTROL_S = 0.5
HEARTBEAT_S = 10.0
BLOCK_S = 0.2
STOPPED = {"ok": False, "code": "service_stopped", "message": "The service stopped."}


def _load(model_id: str, into: Path) -> Any:
    from tasks import artifacts
    from tasks.models import TrainedModel
    from training_runtime.predict import Predictor

    model = TrainedModel.objects.unscoped().get(id=model_id)
    folder = artifacts.fetch(model.artifact_key, into / model_id)
    return Predictor.load(folder, _device())


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Prepared:
    """A micro-batch made ready for the model: its requests, the predictor it was prepared
    for, the model inputs of the images that decoded, and the replies of those that did not."""

    requests: list[dict[str, Any]]
    predictor: Any
    tensors: list[Any]
    sizes: list[tuple[int, int]]
    rows: list[int]
    replies: list[dict[str, Any] | None]


def prepare(predictor: Any, batch: list[dict[str, Any]]) -> Prepared:
    """Decode and preprocess a micro-batch; an image that does not decode gets its own 400."""
    from training_runtime.predict import InvalidImageError

    ready = Prepared(batch, predictor, [], [], [], [None] * len(batch))
    for i, request in enumerate(batch):
        try:
            (tensor,), (size,) = predictor.prepare([decode_image(request["image"])])
        except (InvalidImageError, ValueError) as exc:
            ready.replies[i] = {"ok": False, "code": "invalid_image",
                                "message": str(exc).replace("image 0:", "image:", 1)}
            continue
        ready.tensors.append(tensor)
        ready.sizes.append(size)
        ready.rows.append(i)
    return ready


def finish(ready: Prepared) -> list[dict[str, Any]]:
    """The replies to a prepared micro-batch, in its order, from one forward pass; each
    request's own confidence filter is applied after it."""
    batch, replies = ready.requests, list(ready.replies)
    if ready.rows:
        floor = min(batch[i]["min_score"] for i in ready.rows)
        top_k = max(batch[i]["top_k"] for i in ready.rows)
        found = ready.predictor.predict_prepared(ready.tensors, ready.sizes, top_k=top_k,
                                                 min_score=floor)
        for i, predictions in zip(ready.rows, found, strict=True):
            wanted = [p for p in predictions if p["score"] >= batch[i]["min_score"]]
            if ready.predictor.scenario == "classification":
                wanted = wanted[:batch[i]["top_k"]]
            replies[i] = {"ok": True, "predictions": wanted}
    return replies


def answer(predictor: Any, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replies to a micro-batch, in its order: predictions, or a per-image error."""
    return finish(prepare(predictor, batch))


def _failed(batch: list[dict[str, Any]], exc: Exception) -> list[dict[str, Any]]:
    return [{"ok": False, "code": "internal_error",
             "message": f"{type(exc).__name__}: {exc}"}] * len(batch)


def merge(parts: list[Prepared]) -> Prepared:
    """One micro-batch of requests prepared apart (for the same predictor)."""
    merged = Prepared([], parts[0].predictor, [], [], [], [])
    for part in parts:
        offset = len(merged.requests)
        merged.requests += part.requests
        merged.tensors += part.tensors
        merged.sizes += part.sizes
        merged.rows += [offset + row for row in part.rows]
        merged.replies += part.replies
    return merged


class _Prefetch:
    """Decodes requests as they arrive, while the model runs the batch before; the model takes
    what is ready when it is free, so batches stay as full as without it. At most one batch of
    prepared requests waits here: the rest stay in the service's queue, where the 429 limit and
    the service's other instances see them."""

    def __init__(self, instance: "_Instance") -> None:
        self.instance = instance
        self.max_batch = settings.SERVING_MAX_BATCH
        self.window = settings.SERVING_BATCH_WINDOW_MS / 1000
        self.ready: list[Prepared] = []
        self.changed = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"serving-prefetch-{instance.number}")

    def _run(self) -> None:
        service_id = str(self.instance.row.id)
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.stopping
                                      or len(self.ready) < self.max_batch)
                if self.stopping:
                    return
                room = self.max_batch - len(self.ready)
            batch = transport().take(service_id, room, 0.0, BLOCK_S)
            predictor = self.instance.predictor
            parts = []
            for request in batch:
                try:
                    parts.append(prepare(predictor, [request]))
                except Exception as exc:  # a failure of ours: the caller gets a 500
                    log.exception("preparing a request failed on service %s", service_id)
                    parts.append(Prepared([request], predictor, [], [], [],
                                          _failed([request], exc)))
            with self.changed:
                self.ready += parts
                self.changed.notify_all()

    def next(self, window_s: float) -> Prepared | None:
        """What is ready, up to a batch, after waiting at most `window_s` for more to fill it;
        None after BLOCK_S with nothing."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.ready, timeout=BLOCK_S):
                return None
            if window_s > 0:
                self.changed.wait_for(lambda: len(self.ready) >= self.max_batch,
                                      timeout=window_s)
            taken, self.ready = self.ready[:self.max_batch], self.ready[self.max_batch:]
            self.changed.notify_all()
        return merge(taken)

    def stop(self) -> None:
        """Stop taking; requests taken but not answered get the stopped service's 409."""
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        self.thread.join()
        if self.ready:
            self.instance.answer_stopped([r for part in self.ready for r in part.requests])


class _Instance:
    def __init__(self, row: Service, number: int, node: str, workdir: Path) -> None:
        self.row, self.number, self.node, self.workdir = row, number, node, workdir
        self.model_id = str(row.model_id)
        self.predictor: Any = None
        self.last_control = self.last_beat = 0.0

    def serve(self) -> str:
        channel = transport()
        prefetch = _Prefetch(self)
        prefetch.thread.start()
        last_size = 0
        try:
            while True:
                # Wait for company only under load: a lone request (the last batch was one
                # too) goes straight to the model instead of waiting out the window.
                ready = prefetch.next(prefetch.window if last_size > 1 else 0.0)
                last_size = len(ready.requests) if ready is not None else 0
                if ready is not None:
                    if ready.predictor is not self.predictor:  # prepared before a switch
                        ready = prepare(self.predictor, ready.requests)
                    try:
                        replies = finish(ready)
                    except Exception as exc:  # a failure of ours: the batch's callers get a 500
                        log.exception("prediction failed on service %s", self.row.id)
                        replies = _failed(ready.requests, exc)
                    channel.reply([(request, {**reply, "model": self.model_id})
                                 for request, reply in zip(ready.requests, replies,
                                                           strict=True)])
                ended = self.control()
                if ended is not None:
                    return ended
        finally:
            prefetch.stop()

    def answer_stopped(self, batch: list[dict[str, Any]]) -> None:
        """Answer requests taken by an instance that leaves: the service stopped."""
        transport().reply([(request, dict(STOPPED)) for request in batch])

    def control(self) -> str | None:
        """Between batches: stop, update, heartbeat, maximum running time."""
        now = time.monotonic()
        if now - self.last_control < CONTROL_S:
            return None
        self.last_control = now
        row = Service.objects.unscoped().get(id=self.row.id)
        if row.state in ("stopping", "stopped", "failed"):
            return row.stop_reason or row.state
        if now - self.last_beat >= HEARTBEAT_S and row.meter_id:
            billing.heartbeat(row.meter_id)
            self.last_beat = now
        if str(row.model_id) != self.model_id:
            self.switch(str(row.model_id))
        elapsed = (timezone.now() - row.created_at).total_seconds()
        if elapsed >= row.max_runtime_s:
            commands.request_stop(row.tenant_id, row.id, "max_runtime", "system:serving")
        return None

    def switch(self, model_id: str) -> None:
        log.info("instance %s switches to model %s", self.number, model_id)
        self.predictor = _load(model_id, self.workdir)
        self.model_id = model_id
        commands.instance_ready(self.row.tenant_id, self.row.id, self.number, model_id)


def _drain(service_id: str) -> None:
    """Answer what is still queued for a service that no instance serves any more."""
    queue = transport()
    while batch := queue.take(service_id, 100, 0.0, 0.01):
        queue.reply([(request, dict(STOPPED)) for request in batch])


def run(service_id: str, number: int) -> str:
    """Serve one instance of a service until it stops; why it ended, or "skipped"."""
    row = Service.objects.unscoped().filter(id=service_id).first()
    if row is None:
        log.warning("instance %s of service %s: no such service", number, service_id)
        return "skipped"
    node = node_name()
    if commands.instance_started(row.tenant_id, row.id, number, node) is None:
        log.info("instance %s of service %s not started: the service is %s or the instance "
                 "runs elsewhere", number, service_id, row.state)
        return "skipped"
    from tasklogs import api as tasklogs

    with (context.scope(actor=f"worker:{node}", correlation_id=service_id),
          tempfile.TemporaryDirectory(prefix="service-") as tmp):
        # the log is complete before the exit is reported: who sees the service stopped sees
        # its instances' last lines
        with tasklogs.capture(row.tenant_id, row.id, node):
            reason = _serve(_Instance(row, number, node, Path(tmp)))
        commands.instance_exited(row.tenant_id, row.id, number, reason)
        if Service.objects.unscoped().get(id=row.id).state in ("stopped", "failed"):
            _drain(service_id)
        close_old_connections()
    return reason


def _serve(instance: _Instance) -> str:
    """Load the model and serve until the service stops; why it ended."""
    row, number = instance.row, instance.number
    try:
        log.info("instance %s of service %s loads model %s", number, row.name, row.model_id)
        instance.predictor = _load(instance.model_id, instance.workdir)
    except Exception as exc:
        log.exception("instance %s could not load the model", number)
        commands.fail(row.tenant_id, row.id, "model_unavailable",
                      f"The model could not be loaded: {type(exc).__name__}: {exc}")
        return "failed"
    commands.instance_ready(row.tenant_id, row.id, number, instance.model_id)
    log.info("instance %s serves", number)
    reason = "failed"
    try:
        reason = instance.serve()
    finally:
        log.info("instance %s leaves (%s)", number, reason)
    return reason
