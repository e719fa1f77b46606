"""Database connections that cannot outlive their thread, and a full pool answered as 503.

Under ASGI every request runs on a thread of its own that ends with the request; the gateway,
the workers and the hubs run others. Requests and jobs hand their connection back when they
end (request_finished, the broker's middleware), but a thread that ends without doing so would
leave it open until the garbage collector finds it (a plain connection) or lose it for good
(a pooled one: psycopg's pool never learns that a connection it lent was dropped, and the pool
shrinks by one each time). `install()` makes every thread that opens a connection close it, or
give it back to the pool, when the thread ends.
"""

import contextlib
import logging
import threading

from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from core.errors import Unavailable

log = logging.getLogger(__name__)
_threads = threading.local()
RETRY_AFTER_S = 2  # what a client is told to wait when every connection was busy
# How PostgreSQL refuses a connection for want of slots (psycopg gives no SQLSTATE for it).
_SERVER_FULL = ("too many clients already", "too many connections for",
                "remaining connection slots are reserved")


class _ClosedAtThreadExit:
    """Kept in a thread-local, so dropped (in that thread) when the thread ends: closes the
    connections it was handed."""

    def __init__(self) -> None:
        self.wrappers: dict[str, BaseDatabaseWrapper] = {}

    def __del__(self) -> None:
        for wrapper in self.wrappers.values():
            if wrapper.connection is not None:
                with contextlib.suppress(Exception):  # a broken one is gone all the same
                    wrapper.close()


def _close_at_thread_exit(sender: type, connection: BaseDatabaseWrapper, **kwargs: object
                          ) -> None:
    guard = getattr(_threads, "guard", None)
    if guard is None:
        guard = _threads.guard = _ClosedAtThreadExit()
    guard.wrappers[connection.alias] = connection


def install() -> None:
    """Close (or return to the pool) each thread's connections when that thread ends."""
    connection_created.connect(_close_at_thread_exit, dispatch_uid="core.dbconnections")


def pool_exhausted(exc: BaseException | None) -> bool:
    """Whether `exc` is the database turning a connection down: the process's pool stayed empty
    for DATABASE_POOL_TIMEOUT_S, or the server has no connection slot left."""
    if not isinstance(exc, OperationalError):
        return False
    from psycopg_pool import PoolTimeout

    cause = exc.__cause__
    return isinstance(cause, PoolTimeout) or any(text in str(exc) for text in _SERVER_FULL)


def busy() -> Unavailable:
    """The 503 a request gets when no database connection freed up in time."""
    return Unavailable("Every database connection is busy; retry in a few seconds.",
                       headers={"Retry-After": str(RETRY_AFTER_S)})
