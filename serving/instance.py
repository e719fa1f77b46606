"""An instance of a service: a worker that loads the model once and answers micro-batches.

    run(service_id, number)     # from the serving actor; returns why it ended

The loop takes a micro-batch from the service's queue (serving.transport): whatever is queued,
plus what arrives within the batch window when the previous batch had company. It predicts the
images that decode in one forward pass and answers the batch in one step (an image that does
not decode gets its own 400 reason; the others are unaffected). Decoding is not overlapped with
the forward pass: on a CPU they share the cores, and bench/serving.py measured the overlap
slower (0.73-0.77 x raw model(x) against 0.75-0.84 x, alternating runs).

Between batches, at most every CONTROL_S, it reads the service row: it leaves when the service
stops, switches model when an update asks (requests wait in the queue meanwhile, none is
dropped) and stops the service when its maximum running time has passed. Its lease (held
through core.lifecycle) is renewed from a side thread with the billing meter's heartbeat.
The last instance to leave a stopped service answers what is still queued
with 409.
"""

import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from billing import api as billing
from core import context, lifecycle
from core.nodes import node_name
from serving import commands
from serving.models import Service
from serving.pixels import too_many_pixels
from serving.transport import decode_image, transport
from training_runtime.device import pick_device

log = logging.getLogger("serving.instance")
CONTROL_S = 0.5
BLOCK_S = 0.2
STOPPED = {"ok": False, "code": "service_stopped", "message": "The service stopped."}


def _load(model_id: str, into: Path) -> Any:
    from modelregistry import api as modelregistry
    from training_runtime.predict import Predictor

    model = modelregistry.get_unscoped(model_id)
    if model is None:
        raise LookupError(f"model {model_id} is not in the registry")
    folder = modelregistry.fetch_artifact(model, into / model_id)
    return Predictor.load(folder, _device())


def _device() -> str:
    return pick_device(settings.TASK_DEVICE)


def answer(predictor: Any, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replies to a micro-batch, in its order: predictions from one forward pass, or a
    per-image error; each request's own confidence filter is applied after the pass."""
    from training_runtime.predict import InvalidImageError

    replies: list[dict[str, Any] | None] = [None] * len(batch)
    images, sizes, rows = [], [], []
    for i, request in enumerate(batch):
        content = decode_image(request["image"])
        too_many = too_many_pixels(content)  # the web process checked; decoding costs by pixel
        if too_many is not None:
            replies[i] = {"ok": False, "code": "image_too_large", "message": too_many}
            continue
        try:
            (image,), (size,) = predictor.prepare([content])
        except (InvalidImageError, ValueError) as exc:
            replies[i] = {"ok": False, "code": "invalid_image",
                          "message": str(exc).replace("image 0:", "image:", 1)}
            continue
        images.append(image)
        sizes.append(size)
        rows.append(i)
    if rows:
        floor = min(batch[i]["min_score"] for i in rows)
        top_k = max(batch[i]["top_k"] for i in rows)
        found = predictor.predict_prepared(images, sizes, top_k=top_k, min_score=floor)
        for i, predictions in zip(rows, found, strict=True):
            wanted = [p for p in predictions if p["score"] >= batch[i]["min_score"]]
            if predictor.scenario == "classification":
                wanted = wanted[:batch[i]["top_k"]]
            replies[i] = {"ok": True, "predictions": wanted}
    return replies


def _failed(batch: list[dict[str, Any]], exc: Exception) -> list[dict[str, Any]]:
    return [{"ok": False, "code": "internal_error",
             "message": f"{type(exc).__name__}: {exc}"}] * len(batch)


class _Instance:
    def __init__(self, row: Service, number: int, node: str, workdir: Path) -> None:
        self.row, self.number, self.node, self.workdir = row, number, node, workdir
        self.model_id = str(row.model_id)
        self.predictor: Any = None
        self.lease: Any = None  # the heartbeat (core.lifecycle), lost when given up for lost
        self.meter_id = row.meter_id  # the meter the lease's heartbeat renews
        self.last_control = 0.0

    def serve(self) -> str:
        channel = transport()
        service_id = str(self.row.id)
        max_batch = settings.SERVING_MAX_BATCH
        window = settings.SERVING_BATCH_WINDOW_MS / 1000
        last_size = 0
        while True:
            # Wait for company only under load: a lone request (the last batch was one too)
            # goes straight to the model instead of waiting out the window.
            batch = channel.take(service_id, max_batch, window if last_size > 1 else 0.0,
                                 BLOCK_S)
            last_size = len(batch)
            if batch:
                try:
                    replies = answer(self.predictor, batch)
                except Exception as exc:  # a failure of ours: the batch's callers get a 500
                    log.exception("prediction failed on service %s", service_id)
                    replies = _failed(batch, exc)
                channel.reply([(request, {**reply, "model": self.model_id})
                               for request, reply in zip(batch, replies, strict=True)])
            ended = self.control()
            if ended is not None:
                return ended

    def control(self) -> str | None:
        """Between batches: stop, update, maximum running time."""
        now = time.monotonic()
        if now - self.last_control < CONTROL_S:
            return None
        self.last_control = now
        if self.lease is not None and self.lease.lost:
            return "superseded"
        row = Service.objects.unscoped().get(id=self.row.id)
        if row.state in ("stopping", "stopped", "failed"):
            return row.stop_reason or row.state
        self.meter_id = row.meter_id
        if str(row.model_id) != self.model_id:
            self.switch(str(row.model_id))
        elapsed = (timezone.now() - row.created_at).total_seconds()
        if elapsed >= row.max_runtime_s:
            commands.request_stop(row.tenant_id, row.id, "max_runtime", "system:serving")
        return None

    def meter_beat(self, at: datetime) -> None:
        """The billing meter's heartbeat, renewed with the lease (core.lifecycle)."""
        if self.meter_id:
            billing.heartbeat(self.meter_id, at=at)

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


def lease_key(service_id: object, number: int | str = "") -> str:
    """The heartbeat lease of one instance (without `number`: the prefix of all of them)."""
    return f"service:{service_id}:{number}"


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

    # The heartbeat the lease sweep and the prediction route look at: a side thread, so that
    # a long model load does not read as a dead instance; it renews the billing meter's too.
    with tempfile.TemporaryDirectory(prefix="service-") as tmp:
        instance = _Instance(row, number, node, Path(tmp))
        with (lifecycle.hold(lease_key(service_id, number), take=True,
                             stale_after_s=settings.SERVING_INSTANCE_TIMEOUT_S,
                             every_s=settings.SERVING_INSTANCE_HEARTBEAT_S,
                             on_beat=instance.meter_beat) as lease,
              context.scope(actor=f"worker:{node}", correlation_id=service_id)):
            instance.lease = lease
            # the log is complete before the exit is reported: who sees the service stopped
            # sees its instances' last lines
            with tasklogs.capture(row.tenant_id, row.id, node):
                reason = _serve(instance)
            if lease is not None and lease.superseded:  # its successor owns the slot
                return "superseded"
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
