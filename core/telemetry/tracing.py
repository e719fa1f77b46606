"""OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set: Django's requests, psycopg's
queries, and dramatiq jobs joined to the request that sent them (the trace context travels in
the message's options). Off, or without the libraries, nothing here does anything.
"""

import logging
import os
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)
MESSAGE_OPTION = "trace_context"  # where a message carries its sender's trace context

_active = False
_provider: Any = None


def active() -> bool:
    """Whether traces are being recorded and exported."""
    return _active


def setup(endpoint: str, service_name: str, *, exporter: Any = None) -> bool:
    """Export traces to the OTLP/HTTP collector at `endpoint`; instrument Django and psycopg.

    Call before Django loads its middleware (AppConfig.ready). `exporter` replaces the OTLP one
    (tests). False when the libraries are missing (logged) or tracing was set up already.
    """
    global _active
    if _active or not (endpoint or exporter):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry packages are "
                       "missing (make install): no traces")
        return False
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, when set, names the whole URL itself.
        exporter = OTLPSpanExporter(endpoint=os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or endpoint.rstrip("/") + "/v1/traces")
    global _provider
    _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    # The global provider can be set once per process; ours is handed to each instrumentation,
    # so that a later setup (tests) exports through its own.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):  # not set yet
        trace.set_tracer_provider(_provider)
    DjangoInstrumentor().instrument(tracer_provider=_provider, is_sql_commentor_enabled=False)
    PsycopgInstrumentor().instrument(tracer_provider=_provider, skip_dep_check=True)
    _active = True
    return True


def shutdown() -> None:
    """Stop tracing: export what is buffered, take the instrumentation out (tests)."""
    global _active
    if not _active:
        return
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    flush()
    DjangoInstrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()
    _provider.shutdown()
    _active = False


def flush(timeout_ms: int = 5000) -> None:
    """Export the spans still buffered (before a test reads them, or a process exits)."""
    if _active:
        _provider.force_flush(timeout_ms)


def inject() -> dict[str, str]:
    """The current trace context as message headers (empty when tracing is off)."""
    if not _active:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def start_job_span(name: str, carrier: Mapping[str, str] | None,
                   attributes: Mapping[str, str]) -> tuple[Any, Any] | None:
    """Open a consumer span for a job, child of the sender's context; (span, token) or None."""
    if not _active:
        return None
    from opentelemetry import context, propagate, trace

    parent = propagate.extract(dict(carrier or {}))
    span = _provider.get_tracer("automl.worker").start_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=dict(attributes))
    token = context.attach(trace.set_span_in_context(span, parent))
    return span, token


def end_job_span(opened: tuple[Any, Any] | None, exception: BaseException | None) -> None:
    """Close what start_job_span opened, marked as failed when the job raised."""
    if opened is None:
        return
    from opentelemetry import context, trace

    span, token = opened
    if exception is not None:
        span.record_exception(exception)
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(exception).__name__))
    span.end()
    context.detach(token)
