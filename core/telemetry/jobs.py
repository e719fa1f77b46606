"""Telemetry around each dramatiq job: counts and durations by queue, actor and outcome, the ids
its log lines carry, and its trace span, child of the request that sent it."""

import functools
import inspect
import threading
import time
from typing import Any

import dramatiq

from core.telemetry import logcontext, metrics, tracing

# Argument names of actors that say what a job works on (logged as such).
_ID_ARGUMENTS = frozenset({"tenant_id", "task_id", "evaluation_id", "service_id", "dataset_id"})


@functools.lru_cache(maxsize=256)
def _parameters(fn: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def ids_of(broker: dramatiq.Broker, message: dramatiq.Message) -> dict[str, object]:
    """The ids among a message's arguments, by the actor's parameter names."""
    try:
        names = _parameters(broker.get_actor(message.actor_name).fn)
    except dramatiq.errors.ActorNotFound:
        names = ()
    found = dict(zip(names, message.args, strict=False))
    found.update(message.kwargs)
    return {name: value for name, value in found.items() if name in _ID_ARGUMENTS}


class JobTelemetry(dramatiq.Middleware):
    """Metrics, log context and trace span of each job; the trace context on each send."""

    def __init__(self) -> None:
        self._state = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message,
                       delay: int | None) -> None:
        metrics.JOBS_SENT.labels(message.queue_name, message.actor_name).inc()
        carrier = tracing.inject()
        if carrier:
            message.options.setdefault(tracing.MESSAGE_OPTION, carrier)

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        ids = ids_of(broker, message)
        log = logcontext.bound(job_id=message.message_id, actor=message.actor_name,
                               queue=message.queue_name, **ids)
        log.__enter__()
        span = tracing.start_job_span(
            message.actor_name, message.options.get(tracing.MESSAGE_OPTION),
            {"messaging.system": "dramatiq", "messaging.destination.name": message.queue_name,
             "messaging.message.id": message.message_id,
             **{f"automl.{key}": str(value) for key, value in ids.items()}})
        self._state.current = (time.monotonic(), log, span)

    def _end(self, message: dramatiq.Message, outcome: str,
             exception: BaseException | None) -> None:
        current = getattr(self._state, "current", None)
        self._state.current = None
        metrics.JOBS.labels(message.queue_name, message.actor_name, outcome).inc()
        if current is None:
            return
        started, log, span = current
        metrics.JOB_DURATION.labels(message.queue_name, message.actor_name).observe(
            time.monotonic() - started)
        tracing.end_job_span(span, exception)
        log.__exit__(None, None, None)

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        self._end(message, "success" if exception is None else "failure", exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._end(message, "skipped", None)


def add_dramatiq_prometheus(broker: dramatiq.Broker) -> bool:
    """In a `dramatiq` worker process: dramatiq's own Prometheus middleware, whose exposition
    server (dramatiq_prom_port, 9191) serves every metric of the worker's processes."""
    if not metrics.enabled():
        return False
    from dramatiq.middleware.prometheus import Prometheus

    broker.add_middleware(Prometheus())
    return True
