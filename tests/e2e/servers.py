"""Real processes for end-to-end tests: `manage.py serve`, dramatiq workers, the scheduler,
an HTTP client for them, a websocket event reader and waits that fail with the processes' logs.

Every process writes to a log file (never a pipe nobody reads, which would block it once full);
a failure message ends with the tail of each one.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, "manage.py"]
# Variables of the pytest run that must not leak into a server configured from scratch.
FOREIGN_ENV = {"DATABASE_URL", "REDIS_URL", "DRAMATIQ_BROKER_URL", "S3_BUCKET", "S3_ENDPOINT_URL",
               "INPROCESS_WORKER", "DJANGO_SETTINGS_MODULE", "DATA_DIR", "PORT", "SECRET_KEY",
               "LOG_LEVEL", "DEBUG", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
               "STRIPE_API_BASE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without the platform's own variables, plus `values`."""
    env = {key: value for key, value in os.environ.items()
           if key not in FOREIGN_ENV and not key.startswith(("TASK_", "BILLING_", "AWS_"))}
    env.update(values)
    return env


class Process:
    """A child process in its own session (so its whole group can be killed), logging to a
    file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return text[-chars:]

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL to the process and every child it forked (dramatiq's worker processes)."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the group, SIGKILL after `timeout`; the group is gone afterwards."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)  # stragglers of the group, if any
        if self.alive():
            self.popen.wait(timeout=10)
        self._log.close()


class Processes:
    """The processes of one deployment, for starting, failing with their logs, and stopping."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.all: list[Process] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(name, args, env, self.log_dir)
        self.all.append(process)
        return process

    def tails(self, chars: int = 3000) -> str:
        return "\n".join(f"----- {p.name} (pid {p.pid}, "
                         f"{'running' if p.alive() else f'exit {p.popen.returncode}'}) -----\n"
                         f"{p.tail(chars)}" for p in self.all)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.tails()}", pytrace=False)

    def stop_all(self) -> None:
        for process in reversed(self.all):
            process.stop()


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """`manage.py <args>` to completion; its output, or a failure showing it."""
    done = subprocess.run([*MANAGE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} exited {done.returncode}:\n"
                    f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}", pytrace=False)
    return done.stdout


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str,
             processes: Processes | None = None, every: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy and return it; else fail naming `what`, with logs."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, requests.RequestException) as exc:
            value, last_error = None, exc
        if value:
            return value
        time.sleep(every)
    message = f"timed out after {timeout:.0f}s waiting for {what}"
    if last_error is not None:
        message += f" (last error: {last_error!r})"
    if processes is not None:
        processes.fail(message)
    pytest.fail(message, pytrace=False)


class Client:
    """JSON over HTTP to one server, as one tenant's token; a failed `ok` shows the logs of
    `processes`."""

    def __init__(self, base: str, token: str | None = None, processes: Processes | None = None):
        self.base, self.token, self.processes = base, token, processes
        self.session = requests.Session()

    def as_(self, token: str) -> "Client":
        return Client(self.base, token, self.processes)

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any
             ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            kwargs["json"] = body
        response = self.session.request(method, self.base + path, headers=headers, timeout=30,
                                        **kwargs)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return response.status_code, payload

    def ok(self, method: str, path: str, body: Any = None, *, status: int = 200, **kwargs: Any
           ) -> Any:
        """The body of a call that must answer `status`."""
        code, payload = self.call(method, path, body, **kwargs)
        if code != status:
            message = f"{method} {path} answered {code}, not {status}: {payload}"
            if self.processes is not None:
                self.processes.fail(message)
            pytest.fail(message, pytrace=False)
        return payload

    def get(self, path: str) -> Any:
        return self.ok("GET", path)

    def head_position(self) -> int:
        """The position of the tenant's newest event (0 when it has none)."""
        after = 0
        while True:
            page = self.get(f"/api/v1/events/?after={after}&limit=1000")
            if not page["results"]:
                return after
            after = page["next_after"]

    def websocket(self, after: int) -> "EventReader":
        url = self.base.replace("http", "ws", 1) + f"/ws/v1/events/?after={after}"
        return EventReader(connect(url, additional_headers={
            "Authorization": f"Bearer {self.token}"}, open_timeout=10, max_size=2**22))


def wait_healthy(client: Client, processes: Processes, timeout: float = 90) -> dict:
    """Wait until /api/v1/health/ answers 200 with every check ok."""
    def healthy() -> dict | None:
        for process in processes.all:
            if not process.alive():
                processes.fail(f"{process.name} exited with {process.popen.returncode} "
                               "while the deployment was starting")
        code, body = client.call("GET", "/api/v1/health/")
        return body if code == 200 and body.get("status") == "ok" else None

    return wait_for(healthy, timeout=timeout, what="a healthy server", processes=processes,
                    every=0.3)


class EventReader:
    """The live event stream of one websocket, with every event read kept in `events`."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.events: list[dict] = []
        self.messages: list[dict] = []

    def __enter__(self) -> "EventReader":
        self.ws.__enter__()  # websockets wants its connection used as a context manager
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.__exit__(*exc)

    def until(self, predicate: Callable[[dict], bool], *, timeout: float, what: str,
              processes: Processes | None = None) -> dict:
        """Read events until one matches `predicate` (events already read count too)."""
        for event in self.events:
            if predicate(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                seen = [(e["type"], e["data"].get("epoch")) for e in self.events[-15:]]
                message = (f"no {what} on the websocket within {timeout:.0f}s; the last events "
                           f"were {seen}")
                if processes is not None:
                    processes.fail(message)
                pytest.fail(message, pytrace=False)
            message = json.loads(raw)
            self.messages.append(message)
            assert message["type"] == "event", f"unexpected message {message}"
            event = message["event"]
            self.events.append(event)
            if predicate(event):
                return event

    def of(self, stream_id: str, *types: str) -> list[dict]:
        """The events read so far of one stream, of the given types (all when none given)."""
        return [e for e in self.events
                if e["stream_id"] == stream_id and (not types or e["type"] in types)]
