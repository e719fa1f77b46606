"""The test suite: PostgreSQL in CI (required: an unreachable server fails the run), the
embedded default SQLite otherwise.

TEST_DB=postgres asks for PostgreSQL outside CI; TEST_DB=sqlite forces SQLite, which is how
`make test` runs the event-log suite a second time in CI.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from core.services import POSTGRES_URL, reachable

from .base import *  # noqa: F403
from .base import DATA_DIR, database_from_env, env

CI = env.bool("CI", default=False)
TEST_DB = env.str("TEST_DB", default="auto")

if TEST_DB == "sqlite":
    use_postgres = False
elif TEST_DB == "postgres" or CI:
    if not reachable(POSTGRES_URL):
        raise ImproperlyConfigured(
            f"PostgreSQL is unreachable at {POSTGRES_URL}: CI runs the suite on it; start it "
            "or set TEST_DATABASE_URL."
        )
    use_postgres = True
else:
    use_postgres = False

if use_postgres:
    DATABASES = {"default": database_from_env(POSTGRES_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # No pool in the test process: its threads each hold a connection for as long as the test
    # needs, more than a production-sized pool lends. The pool is proven on real servers
    # (tests/e2e/test_db_connections.py).
    DATABASES["default"]["OPTIONS"].pop("pool", None)
else:
    DATABASES = {"default": database_from_env(f"sqlite:///{DATA_DIR / 'test-main.sqlite3'}")}
    # A file, not memory: concurrency tests open several connections to the same database.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{worker}.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": "100000/min", "anon": "100000/min"}  # noqa: F405
EVENTS_POLL_INTERVAL_S = 0.2
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
INPROCESS_WORKER = False
DRAMATIQ_BROKER_URL = ""
# The host the test client names, so links in answers can be followed by it.
PUBLIC_URL = "http://testserver"
# Health checks: a loaded test machine must not turn a slow answer into a failed check.
READINESS_CHECK_TIMEOUT_S = 10.0
