"""Reading the REST event feed from tests.

On PostgreSQL the feed only returns positions below the oldest transaction still open anywhere
on the server (see eventlog.guards): a transaction of another connection, even in another
database on a shared server, holds it back for a moment. Tests that read the feed right after
writing therefore wait, briefly, until what they wrote shows.
"""

import time
from collections.abc import Callable

FEED_WAIT_S = 10.0


def read_feed(client, query: str = "?after=0", *,
              until: Callable[[list[dict]], bool], timeout: float = FEED_WAIT_S) -> list[dict]:
    """The feed's events once `until(events)` holds, or what it shows when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/events/{query}")
        assert response.status_code == 200, response.content
        events = response.json()["results"]
        if until(events) or time.monotonic() >= deadline:
            return events
        time.sleep(0.05)
