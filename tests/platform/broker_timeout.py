"""The RabbitMQ consumer_timeout the deployment sets, read from platform/compose.yaml."""

import re
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "platform" / "compose.yaml"


def consumer_timeout_s() -> int:
    """Seconds a job may hold its message before RabbitMQ closes the worker's channel."""
    rabbitmq = yaml.safe_load(COMPOSE.read_text())["services"]["rabbitmq"]
    args = rabbitmq["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    found = re.search(r"-rabbit consumer_timeout (\d+)", args)
    assert found, f"compose's rabbitmq sets no consumer_timeout: {args!r}"
    return int(found.group(1)) // 1000
