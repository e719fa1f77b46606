"""The platform's Prometheus metrics, and their exposition.

Defined once here so every process (web, worker, scheduler) names them alike. With
PROMETHEUS_MULTIPROC_DIR set (several uvicorn workers, dramatiq's worker processes) each process
writes its samples to files in that folder and `/metrics` adds them up. Without prometheus_client
installed, every metric is a no-op and `/metrics` answers 404.
"""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # each process writes its files there
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

try:
    import prometheus_client
except ImportError:  # optional: `make run` needs none of it
    prometheus_client = None

# Seconds: an API call is milliseconds, a prediction up to SERVING_REQUEST_TIMEOUT_S.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Jobs run from milliseconds (a settlement) to hours (training).
JOB_BUCKETS = (0.01, 0.05, 0.25, 1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 4 * 3600.0)


class _Null:
    """Stands in for any metric when prometheus_client is not installed."""

    def labels(self, *args: Any, **kwargs: Any) -> "_Null":
        """Itself: every label set is the same no-op."""
        return self

    def inc(self, amount: float = 1) -> None:
        """Nothing."""

    def dec(self, amount: float = 1) -> None:
        """Nothing."""

    def set(self, value: float) -> None:
        """Nothing."""

    def observe(self, value: float) -> None:
        """Nothing."""


def _metric(kind: str, name: str, doc: str, labels: tuple[str, ...] = (), **options: Any) -> Any:
    if prometheus_client is None:
        return _Null()
    if kind != "Gauge":
        options.pop("multiprocess_mode", None)
    return getattr(prometheus_client, kind)(name, doc, labels, **options)


HTTP_REQUESTS = _metric(
    "Counter", "automl_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"))
HTTP_LATENCY = _metric(
    "Histogram", "automl_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ("method", "route"), buckets=LATENCY_BUCKETS)
WEBSOCKETS_OPEN = _metric(
    "Gauge", "automl_websocket_connections",
    "Event-stream websockets open now.", multiprocess_mode="livesum")
WEBSOCKETS_OPENED = _metric(
    "Counter", "automl_websocket_accepted_total", "Event-stream websockets accepted.")
WEBSOCKET_LAG = _metric(
    "Histogram", "automl_websocket_delivery_lag_seconds",
    "From an event's commit to its sending on a websocket.", buckets=LATENCY_BUCKETS)
JOBS = _metric(
    "Counter", "automl_jobs_total",
    "Background jobs that ended, by queue, actor and outcome (success, failure, skipped).",
    ("queue", "actor", "outcome"))
JOB_DURATION = _metric(
    "Histogram", "automl_job_duration_seconds", "Time a background job ran, by queue and actor.",
    ("queue", "actor"), buckets=JOB_BUCKETS)
JOBS_SENT = _metric(
    "Counter", "automl_jobs_sent_total", "Background jobs enqueued, by queue and actor.",
    ("queue", "actor"))
EVENTS_APPENDED = _metric(
    "Counter", "automl_events_appended_total", "Events appended to the log, by stream type.",
    ("stream_type",))
LOG_HEAD = _metric(
    "Gauge", "automl_eventlog_head_position", "The highest log position this process appended.",
    multiprocess_mode="max")
PROJECTION_POSITION = _metric(
    "Gauge", "automl_projection_position",
    "The log position an asynchronous projection has handled; head minus this is its lag.",
    ("projection",), multiprocess_mode="max")
PROJECTION_LAG = _metric(
    "Gauge", "automl_projection_lag_seconds",
    "Age of the newest event an asynchronous projection handled in its last pass (0: caught up).",
    ("projection",), multiprocess_mode="mostrecent")
SETTLEMENTS = _metric(
    "Counter", "automl_billing_settlement_runs_total",
    "Billing settlement passes, by outcome (success, failure).", ("outcome",))
SETTLEMENT_DURATION = _metric(
    "Histogram", "automl_billing_settlement_duration_seconds",
    "Time a billing settlement pass took.", buckets=JOB_BUCKETS)
PREDICTION_LATENCY = _metric(
    "Histogram", "automl_prediction_duration_seconds",
    "Time to answer a prediction, by service and outcome (ok, throttled, error).",
    ("service", "outcome"), buckets=LATENCY_BUCKETS)


def enabled() -> bool:
    """Whether metrics are collected (prometheus_client is installed)."""
    return prometheus_client is not None


@contextmanager
def counted(counter: Any, histogram: Any) -> Iterator[None]:
    """Count a run of the block by outcome (success, failure) and observe its duration."""
    started = time.monotonic()
    try:
        yield
    except BaseException:
        counter.labels("failure").inc()
        raise
    else:
        counter.labels("success").inc()
    finally:
        histogram.observe(time.monotonic() - started)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric of this process, or of all processes writing to
    PROMETHEUS_MULTIPROC_DIR; and its content type."""
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST


def clear_multiprocess_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR of an earlier run's files (call before any worker starts:
    a dead process's counters would otherwise be added to the new ones)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))
