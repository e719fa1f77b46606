"""A request that queues a job and the job it queued are one trace, exported over OTLP/HTTP to
a collector (here an in-process stub that decodes the protobuf like a real one)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq
import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from core.telemetry import tracing
from tests.conftest import Api
from tests.telemetry.trace_urls import TRACED
from tests.workers import stub_worker

ran = threading.Event()


@dramatiq.actor(actor_name=TRACED.actor_name, queue_name=TRACED.queue_name, max_retries=0)
def traced_job(value: str) -> None:
    ran.set()


class Collector(BaseHTTPRequestHandler):
    spans: list = []
    paths: list = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).paths.append((self.path, self.headers["Content-Type"]))
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                type(self).spans.extend((service, span) for span in scope.spans)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def collector():
    Collector.spans, Collector.paths = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def traced(collector):
    assert tracing.setup(collector, "automl-test"), "tracing was already set up"
    yield Collector
    tracing.shutdown()


def get(kind: str, path: str):
    """A new client each time: the tracing middleware is in its chain. ASGI is how uvicorn
    serves (the Django instrumentation needs its ASGI part for those requests)."""
    if kind == "asgi":
        return async_to_sync(AsyncClient().get)(path)
    return Api().get(path)


@pytest.mark.urls("tests.telemetry.trace_urls")
@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_request_and_its_job_share_one_trace(transactional_db, traced, kind):
    ran.clear()
    with stub_worker() as broker:
        response = get(kind, "/traced/")
        assert response.status_code == 202
        broker.join("cpu")
    assert ran.is_set()
    tracing.flush()

    assert all(path == "/v1/traces" and kind == "application/x-protobuf"
               for path, kind in traced.paths)
    assert {service["service.name"] for service, _ in traced.spans} == {"automl-test"}
    spans = [span for _, span in traced.spans]
    web = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER and "traced" in s.name]
    worker = [s for s in spans if s.kind == Span.SPAN_KIND_CONSUMER
              and s.name == TRACED.actor_name]
    assert len(web) == 1, [s.name for s in spans]
    assert len(worker) == 1, [s.name for s in spans]
    assert worker[0].trace_id == web[0].trace_id
    assert worker[0].parent_span_id == web[0].span_id  # sent from inside the request's span


def test_nothing_is_traced_without_an_endpoint(transactional_db):
    assert not tracing.active()
    assert tracing.inject() == {}
    message = TRACED.send("t-2")
    assert tracing.MESSAGE_OPTION not in message.options
