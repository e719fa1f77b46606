"""JSON log lines (LOG_FORMAT=json) carry the request id, the tenant and the route's object id;
a worker job's lines carry the job id and the ids in its arguments."""

import io
import json
import logging
import uuid
from datetime import datetime, timedelta
from logging.config import DictConfigurator

import dramatiq
import pytest

from core.telemetry import logcontext
from core.telemetry.logs import logging_config
from tests.workers import stub_worker


@pytest.fixture
def json_lines():
    """Lines the production JSON handler would write, for the loggers named."""
    config = logging_config("json", "INFO")
    formatter = DictConfigurator(config).configure_formatter(config["formatters"]["json"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(logcontext.ContextFilter())
    attached = []

    def capture(name: str) -> None:
        logger = logging.getLogger(name)
        attached.append((logger, logger.level))
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield capture, lines
    for logger, level in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_request_line_carries_request_id_tenant_and_object(api, tenant_a, json_lines):
    capture, lines = json_lines
    capture("core.access")
    task_id = uuid.uuid4()

    response = api.as_(tenant_a).get(f"/api/v1/tasks/{task_id}/",
                                     HTTP_X_REQUEST_ID="probe-0042")

    assert response["X-Request-ID"] == "probe-0042"
    (line,) = lines()
    assert line["request_id"] == "probe-0042"
    assert line["tenant_id"] == tenant_a.tenant_id
    assert line["task_id"] == str(task_id)
    assert line["route"] == "/api/v1/tasks/<uuid:pk>/"
    assert line["status"] == 404
    assert line["level"] == "INFO"
    assert line["logger"] == "core.access"
    assert {"message", "duration_ms"} <= set(line)
    assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)


@pytest.mark.parametrize("sent", ["has spaces", "x" * 129, "new\nline", ""])
def test_an_unfit_request_id_is_replaced_and_the_new_one_logged(api, db, json_lines, sent):
    capture, lines = json_lines
    capture("core.access")

    response = api.get("/api/v1/health/", HTTP_X_REQUEST_ID=sent)

    echoed = response["X-Request-ID"]
    assert echoed != sent
    assert echoed.isalnum()
    assert lines()[-1]["request_id"] == echoed
    assert "tenant_id" not in lines()[-1]  # anonymous


def test_a_job_line_carries_job_id_and_argument_ids(transactional_db, json_lines):
    capture, lines = json_lines
    capture("tests.telemetry.job")
    task_id = str(uuid.uuid4())

    def work(task_id: str, attempt: int) -> None:
        logging.getLogger("tests.telemetry.job").info("working on attempt %s", attempt)

    actor = dramatiq.actor(work, actor_name="telemetry_test_log_job", queue_name="cpu",
                           max_retries=0)
    with stub_worker() as broker:
        message = actor.send(task_id, 2)
        broker.join("cpu")

    (line,) = lines()
    assert line["message"] == "working on attempt 2"
    assert line["job_id"] == message.message_id
    assert line["task_id"] == task_id
    assert line["actor"] == "telemetry_test_log_job"
    assert line["queue"] == "cpu"


def test_text_is_the_default_and_json_is_checked():
    config = logging_config("text", "INFO")
    assert config["handlers"]["console"]["formatter"] == "text"
    with pytest.raises(Exception, match="LOG_FORMAT"):
        logging_config("yaml", "INFO")


def test_djangos_own_line_for_a_refusal_carries_the_ids(api, tenant_a, json_lines):
    # django.request logs a 4xx after the middleware chain returned, out of the request's context
    capture, lines = json_lines
    capture("django.request")

    api.as_(tenant_a).get(f"/api/v1/tasks/{uuid.uuid4()}/", HTTP_X_REQUEST_ID="probe-0043")

    (line,) = [line for line in lines() if line["logger"] == "django.request"]
    assert line["request_id"] == "probe-0043"
    assert line["tenant_id"] == tenant_a.tenant_id
