"""HTTP with retries: 429 and 503 answers (and connection failures of idempotent calls) are
tried again after `Retry-After` seconds, or an exponential back-off when the answer gives none;
other errors raise at once as `automl_client.errors` exceptions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from automl_client import errors

RETRIED_STATUSES = (429, 503)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def retry_after(response: httpx.Response) -> float | None:
    """The answer's Retry-After in seconds (the delta form), or None."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Transport:
    """One httpx client, the credential and the retry policy."""

    def __init__(self, base_url: str, token: str | None = None, *, retries: int = 4,
                 backoff_s: float = 0.5, max_wait_s: float = 30.0, timeout_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep,
                 http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retries, self.backoff_s, self.max_wait_s = retries, backoff_s, max_wait_s
        self.sleep = sleep
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def headers(self) -> dict[str, str]:
        """The credential header, when there is one."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _wait(self, attempt: int, answer: float | None) -> None:
        delay = answer if answer is not None else self.backoff_s * 2 ** attempt
        self.sleep(min(self.max_wait_s, delay + random.uniform(0, delay / 10)))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to the request, after the retries it deserves; an error answer raises."""
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if last or method not in IDEMPOTENT:
                    raise errors.TransportError("unreachable", f"{self.base_url}: {exc}") from exc
                self._wait(attempt, None)
                continue
            if response.status_code < 400:
                return response
            wait = retry_after(response)
            if response.status_code in RETRIED_STATUSES and not last and not _permanent(response):
                self._wait(attempt, wait)
                continue
            raise errors.from_answer(response.status_code, _json(response), wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON body."""
        return _json(self.send(method, path, **kwargs))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _permanent(response: httpx.Response) -> bool:
    """A 503 that waiting does not cure: payments not configured on this install."""
    body = _json(response)
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    return code == "payments_not_configured"
