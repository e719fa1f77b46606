"""/livez, /readyz and /api/v1/health/ with each backing service unreachable, their exemptions,
and readiness that keeps its connections and its verdicts.

Services are pointed at closed ports or refused credentials; the RabbitMQ and Redis ones that
need the real servers take `rabbitmq_url` / `redis_url` (skipped outside CI when down).
"""

import socket
from urllib.parse import urlsplit, urlunsplit

import dramatiq
import pytest
import redis
from django.db import connections

from core import broker as core_broker
from core import health
from tests.core.test_storage import s3  # noqa: F401  (fixture)

SERVICES = ("broker", "channel_layer", "database", "storage")


@pytest.fixture(autouse=True)
def fresh_verdicts(settings):
    # Generous: a loaded test machine must not turn a slow answer into a failed check (the
    # unreachable services here refuse at once).
    settings.READINESS_CHECK_TIMEOUT_S = 10.0
    health.forget()
    yield
    health.forget()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1].rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc="@".join([*netloc[:-1], f"{host}:{port}"])))


def assert_degraded(api, failing: str) -> None:
    ready = api.get("/readyz")
    assert ready.status_code == 503, ready.content
    body = ready.json()
    assert body["failing"] == [failing]
    assert body["checks"][failing].startswith("error")
    assert all(body["checks"][name] == "ok" for name in SERVICES if name != failing)
    assert ready["Retry-After"]
    assert api.get("/livez").status_code == 200  # alive all the same: no restart for this
    health_body = api.get("/api/v1/health/")  # the documented route keeps its 200
    assert health_body.status_code == 200
    assert health_body.json()["status"] == "degraded"


@pytest.fixture
def use_broker(settings):
    previous = dramatiq.get_broker()
    made = []

    def install(url: str) -> None:
        settings.DRAMATIQ_BROKER_URL = url
        broker = core_broker.build_broker(url)
        made.append(broker)
        dramatiq.set_broker(broker)

    yield install
    dramatiq.set_broker(previous)
    for broker in made:
        broker.close()


def test_ready_and_alive_with_the_embedded_defaults(api, db):
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": dict.fromkeys(SERVICES, "ok")}
    live = api.get("/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


def test_probes_answer_any_host_but_other_routes_keep_the_host_check(api, db, settings):
    settings.ALLOWED_HOSTS = ["automl.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    for path in ("/livez", "/readyz"):  # kubelet: the pod's IP as Host, plain HTTP
        assert api.get(path, HTTP_HOST="10.12.0.7:8000").status_code == 200
    assert api.get("/api/v1/me/", HTTP_HOST="10.12.0.7:8000").status_code == 400
    assert api.get("/api/v1/me/", HTTP_HOST="automl.example.com").status_code == 301


def test_probes_take_only_get(api, db):
    response = api.post("/readyz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_database_unreachable(api, db, monkeypatch):
    # Every connection the check's thread opens reads these settings (the test's own
    # connection is open already and stays).
    database = connections.settings["default"]
    if database["ENGINE"].endswith("sqlite3"):
        monkeypatch.setitem(database, "NAME", "/nonexistent-folder/db.sqlite3")
    else:
        monkeypatch.setitem(database, "PORT", closed_port())
    assert_degraded(api, "database")


@pytest.mark.parametrize("how", ["closed port", "refused password"])
def test_channel_layer_redis_unreachable(api, db, settings, redis_url, how):
    url = (with_port(redis_url, closed_port()) if how == "closed port"
           else with_port(redis_url, urlsplit(redis_url).port or 6379).replace(
               "redis://", "redis://:not-the-password@"))
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [url]}}}
    assert_degraded(api, "channel_layer")


def test_channel_layer_closed_port_without_a_server(api, db, settings):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [f"redis://127.0.0.1:{closed_port()}/0"]}}}
    assert_degraded(api, "channel_layer")


def test_broker_rabbitmq_closed_port(api, db, use_broker):
    use_broker(f"amqp://guest:guest@127.0.0.1:{closed_port()}/")
    assert_degraded(api, "broker")


def test_broker_rabbitmq_refused_credentials(api, db, use_broker, rabbitmq_url):
    parts = urlsplit(rabbitmq_url)
    use_broker(urlunsplit(parts._replace(
        netloc=f"guest:not-the-password@{parts.hostname}:{parts.port or 5672}")))
    assert_degraded(api, "broker")


def test_broker_redis_closed_port(api, db, use_broker):
    use_broker(f"redis://127.0.0.1:{closed_port()}/0")
    assert_degraded(api, "broker")


def test_storage_s3_unreachable(api, db, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "automl", "endpoint_url": f"http://127.0.0.1:{closed_port()}",
                    "access_key": "key", "secret_key": "secret", "region_name": "us-east-1"}}}
    assert_degraded(api, "storage")


# --- cheap when probed often ---------------------------------------------------------------------


def test_verdicts_are_kept_within_the_cache_window(api, db, monkeypatch, settings):
    settings.READINESS_CACHE_S = 60
    runs = []
    original = health.CHECKS["database"]

    def counted() -> None:
        runs.append(1)
        original()

    monkeypatch.setitem(health.CHECKS, "database", counted)
    for _ in range(5):
        assert api.get("/readyz").status_code == 200
        assert api.get("/api/v1/health/").status_code == 200
    assert len(runs) == 1

    settings.READINESS_CACHE_S = 0  # past the window: checked again
    api.get("/readyz")
    assert len(runs) == 2


def test_rabbitmq_check_keeps_one_connection(api, db, use_broker, rabbitmq_url, monkeypatch,
                                             settings):
    import pika

    opened = []
    real = pika.BlockingConnection

    def spy(*args, **kwargs):
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pika, "BlockingConnection", spy)
    use_broker(rabbitmq_url)
    settings.READINESS_CACHE_S = 0  # every probe runs the checks
    for _ in range(5):
        assert api.get("/readyz").status_code == 200
    assert len(opened) == 1


def test_redis_check_keeps_one_connection(api, db, settings, redis_url):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_url]}}}
    settings.READINESS_CACHE_S = 0
    server = redis.Redis.from_url(redis_url)
    api.get("/readyz")  # the first probe connects

    def connections_served() -> int:
        return server.info("stats")["total_connections_received"]

    before = connections_served()
    for _ in range(5):
        assert api.get("/readyz").status_code == 200
    assert connections_served() - before <= 1  # ours is the one INFO just opened, if any
    server.close()


def test_s3_check_keeps_one_connection(api, db, s3, settings, monkeypatch):  # noqa: F811
    from urllib3.connectionpool import HTTPConnectionPool

    opened = []
    real = HTTPConnectionPool._new_conn

    def spy(pool):
        opened.append(pool.port)
        return real(pool)

    monkeypatch.setattr(HTTPConnectionPool, "_new_conn", spy)
    settings.READINESS_CACHE_S = 0
    for _ in range(5):
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.content
    assert opened == [int(s3.rsplit(":", 1)[1])]
