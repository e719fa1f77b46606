"""`Client`: the API's resources as methods. Every method that calls the API names its route
with `@route(METHOD, PATH)`; `ROUTES` lists them, and the tests check each against the
published schema, so client and server cannot drift apart unnoticed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from automl_client import errors
from automl_client.models import (
    Dataset,
    Evaluation,
    Project,
    Resource,
    Service,
    Task,
    TrainedModel,
    Usage,
    Wallet,
)
from automl_client.transport import Transport

ROUTES: list[tuple[str, str]] = []
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=Resource)
Progress = Callable[[int, int | None], None]  # (bytes done, bytes in all or None)


def route(method: str, path: str) -> Callable[[F], F]:
    """Declare the API route a method calls (checked against the schema by the tests)."""
    ROUTES.append((method, path))

    def mark(function: F) -> F:
        function.route = (method, path)  # type: ignore[attr-defined]
        return function
    return mark


class ProgressReader:
    """A file that reports how much of it has been read (httpx reads uploads in chunks)."""

    def __init__(self, path: Path, progress: Progress | None):
        self.file = open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`
        self.total = path.stat().st_size
        self.done, self.progress = 0, progress

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.done += len(chunk)
        if chunk and self.progress is not None:
            self.progress(self.done, self.total)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def fileno(self) -> int:
        return self.file.fileno()

    def __enter__(self) -> ProgressReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


class Client:
    """The platform at `base_url` (default $AUTOML_URL or http://localhost:8000), as the
    holder of `token` (default $AUTOML_TOKEN)."""

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 **transport: Any):
        base = base_url or os.environ.get("AUTOML_URL") or "http://localhost:8000"
        self.transport = Transport(base, token or os.environ.get("AUTOML_TOKEN"), **transport)

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def token(self) -> str | None:
        return self.transport.token

    # --- accounts -------------------------------------------------------------------------

    @route("POST", "/api/v1/auth/signup/")
    def signup(self, email: str, password: str, tenant: str) -> dict[str, Any]:
        """A new user owning a new tenant; the client uses its token from now on."""
        answer = self.transport.json("POST", "/api/v1/auth/signup/", json={
            "email": email, "password": password, "tenant": tenant})
        self.transport.token = answer["token"]
        return answer

    @route("POST", "/api/v1/auth/token/")
    def login(self, email: str, password: str, tenant: str | None = None) -> str:
        """A new API token for this user (in `tenant`, or their first); used from now on."""
        body = {"email": email, "password": password}
        if tenant:
            body["tenant"] = tenant
        self.transport.token = self.transport.json("POST", "/api/v1/auth/token/",
                                                   json=body)["token"]
        return self.transport.token

    @route("GET", "/api/v1/me/")
    def me(self) -> dict[str, Any]:
        """The caller: user, tenant and role."""
        return self.transport.json("GET", "/api/v1/me/")

    # --- paging ---------------------------------------------------------------------------

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Every item of a list route, page after page (following each page's `next`)."""
        url: str | None = path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        while url:
            page = self.transport.json("GET", url, params=query or None)
            yield from page["results"]
            url, query = page.get("next"), {}  # `next` carries the cursor and the filters

    def _list(self, cls: type[R], path: str, **params: Any) -> Iterator[R]:
        return (cls.from_json(item) for item in self.pages(path, params))

    # --- projects -------------------------------------------------------------------------

    @route("GET", "/api/v1/projects/")
    def projects(self) -> Iterator[Project]:
        """The tenant's projects."""
        return self._list(Project, "/api/v1/projects/")

    @route("POST", "/api/v1/projects/")
    def create_project(self, name: str, description: str = "") -> Project:
        """A new project."""
        return Project.from_json(self.transport.json("POST", "/api/v1/projects/", json={
            "name": name, "description": description}))

    def project_named(self, name_or_id: str, *, create: bool = False) -> Project:
        """The project with this id or name (made when `create` and none has the name)."""
        for project in self.projects():
            if name_or_id in (project.id, project.name):
                return project
        if create:
            return self.create_project(name_or_id)
        raise errors.NotFound("not_found", f"No project {name_or_id!r}.")

    # --- datasets -------------------------------------------------------------------------

    @route("GET", "/api/v1/datasets/")
    def datasets(self, project: str | None = None, state: str | None = None
                 ) -> Iterator[Dataset]:
        """The tenant's datasets (newest version of each)."""
        return self._list(Dataset, "/api/v1/datasets/", project=project, state=state)

    @route("GET", "/api/v1/datasets/{id}/")
    def dataset(self, dataset_id: str) -> Dataset:
        """One dataset."""
        return Dataset.from_json(self.transport.json("GET", f"/api/v1/datasets/{dataset_id}/"))

    @route("POST", "/api/v1/datasets/")
    def upload_dataset(self, path: str | Path, *, project: str, name: str, kind: str,
                       format: str, progress: Progress | None = None) -> Dataset:
        """Upload a zip as a new dataset; it is validated afterwards (`wait_dataset`)."""
        path = Path(path)
        with ProgressReader(path, progress) as reader:
            answer = self.transport.json("POST", "/api/v1/datasets/", data={
                "project": project, "name": name, "kind": kind, "format": format},
                files={"file": (path.name, reader, "application/zip")})
        return Dataset.from_json(answer)

    def wait_dataset(self, dataset_id: str, *, timeout_s: float = 600,
                     every_s: float = 1.0) -> Dataset:
        """The dataset once validated (ready) or refused (invalid)."""
        return _poll(lambda: self.dataset(dataset_id),
                     lambda d: d.state not in ("uploaded", "validating", "pending"),
                     timeout_s, every_s, self.transport.sleep)

    # --- compute specs and money ------------------------------------------------------------

    @route("GET", "/api/v1/billing/specs/")
    def specs(self) -> list[dict[str, Any]]:
        """The compute specs on offer, with their price per hour."""
        return list(self.pages("/api/v1/billing/specs/"))

    def default_spec(self, kind: str = "cpu") -> str:
        """The cheapest spec of this kind (its name)."""
        offered = sorted((s for s in self.specs() if s["kind"] == kind),
                         key=lambda s: s["price_per_hour"])
        if not offered:
            raise errors.NotFound("not_found", f"No {kind} compute spec is offered.")
        return offered[0]["name"]

    @route("GET", "/api/v1/billing/wallet/")
    def wallet(self) -> Wallet:
        """The tenant's money in minor units."""
        return Wallet.from_json(self.transport.json("GET", "/api/v1/billing/wallet/"))

    @route("GET", "/api/v1/billing/usage/")
    def usage(self, group_by: str = "resource", start: str | None = None,
              end: str | None = None) -> Usage:
        """Usage of a period (default: this month) grouped by resource, project, spec, day or
        month."""
        params = {"group_by": group_by, "from": start, "to": end}
        return Usage.from_json(self.transport.json("GET", "/api/v1/billing/usage/", params={
            k: v for k, v in params.items() if v is not None}))

    # --- tasks ----------------------------------------------------------------------------

    @route("GET", "/api/v1/tasks/")
    def tasks(self, project: str | None = None, state: str | None = None) -> Iterator[Task]:
        """The tenant's tasks, newest first."""
        return self._list(Task, "/api/v1/tasks/", project=project, state=state)

    @route("GET", "/api/v1/tasks/{id}/")
    def task(self, task_id: str) -> Task:
        """One task."""
        return Task.from_json(self.transport.json("GET", f"/api/v1/tasks/{task_id}/"))

    @route("POST", "/api/v1/tasks/")
    def create_task(self, **fields: Any) -> Task:
        """Create and queue a training task (`project`, `name`, `scenario`, `algorithm`,
        `train_dataset`, `billing_mode`, `spec`, and optional training settings)."""
        body = {k: v for k, v in fields.items() if v is not None}
        return Task.from_json(self.transport.json("POST", "/api/v1/tasks/", json=body))

    @route("POST", "/api/v1/tasks/{id}/stop/")
    def stop_task(self, task_id: str) -> Task:
        """Ask the task to stop."""
        return Task.from_json(self.transport.json("POST", f"/api/v1/tasks/{task_id}/stop/"))

    # --- models ---------------------------------------------------------------------------

    @route("GET", "/api/v1/models/")
    def models(self, project: str | None = None) -> Iterator[TrainedModel]:
        """The tenant's trained models."""
        return self._list(TrainedModel, "/api/v1/models/", project=project)

    @route("GET", "/api/v1/models/{id}/")
    def model(self, model_id: str) -> TrainedModel:
        """One trained model."""
        return TrainedModel.from_json(self.transport.json("GET", f"/api/v1/models/{model_id}/"))

    @route("GET", "/api/v1/models/{id}/download/")
    def download_model(self, model_id: str, destination: str | Path, *,
                       format: str = "artifact", progress: Progress | None = None) -> Path:
        """Save the model (artifact, onnx or torchscript) to `destination`, streamed; a
        redirect to object storage is followed (without the token)."""
        path = f"/api/v1/models/{model_id}/download/"
        destination = Path(destination)
        transport = self.transport
        with transport.http.stream("GET", path, params={"format": format},
                                   headers=transport.headers(), follow_redirects=True) as answer:
            if answer.status_code >= 400:
                answer.read()
                raise errors.from_answer(answer.status_code, _maybe_json(answer))
            total = int(answer.headers["Content-Length"]) if answer.headers.get(
                "Content-Length") else None
            done = 0
            with open(destination, "wb") as out:
                for chunk in answer.iter_bytes():
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        return destination

    # --- evaluations ----------------------------------------------------------------------

    @route("GET", "/api/v1/evaluations/")
    def evaluations(self, task: str | None = None, model: str | None = None,
                    state: str | None = None) -> Iterator[Evaluation]:
        """The tenant's evaluations, newest first."""
        return self._list(Evaluation, "/api/v1/evaluations/", task=task, model=model,
                          state=state)

    @route("GET", "/api/v1/evaluations/{id}/")
    def evaluation(self, evaluation_id: str) -> Evaluation:
        """One evaluation with its summary and metrics."""
        return Evaluation.from_json(self.transport.json(
            "GET", f"/api/v1/evaluations/{evaluation_id}/"))

    @route("POST", "/api/v1/evaluations/")
    def create_evaluation(self, model: str, dataset: str, **options: Any) -> Evaluation:
        """Evaluate a model on a dataset."""
        body = {"model": model, "dataset": dataset, **{
            k: v for k, v in options.items() if v is not None}}
        return Evaluation.from_json(self.transport.json("POST", "/api/v1/evaluations/",
                                                        json=body))

    def wait_evaluation(self, evaluation_id: str, *, timeout_s: float = 1800,
                        every_s: float = 1.0) -> Evaluation:
        """The evaluation once it has ended."""
        return _poll(lambda: self.evaluation(evaluation_id), lambda e: e.ended, timeout_s,
                     every_s, self.transport.sleep)

    # --- services and predictions ---------------------------------------------------------

    @route("GET", "/api/v1/services/")
    def services(self, state: str | None = None) -> Iterator[Service]:
        """The tenant's prediction services."""
        return self._list(Service, "/api/v1/services/", state=state)

    @route("GET", "/api/v1/services/{id}/")
    def service(self, service_id: str) -> Service:
        """One service."""
        return Service.from_json(self.transport.json("GET", f"/api/v1/services/{service_id}/"))

    @route("POST", "/api/v1/services/")
    def publish(self, model: str, name: str, spec: str, *, billing_mode: str = "postpaid",
                instances: int | None = None, max_runtime_s: int | None = None
                ) -> tuple[Service, str]:
        """Publish a trained model as a service: the service and its prediction key (shown
        this once)."""
        body = {"model": model, "name": name, "spec": spec, "billing_mode": billing_mode,
                "instances": instances, "max_runtime_s": max_runtime_s}
        answer = self.transport.json("POST", "/api/v1/services/", json={
            k: v for k, v in body.items() if v is not None})
        return Service.from_json(answer), answer.get("key", "")

    def wait_service(self, service_id: str, *, timeout_s: float = 600,
                     every_s: float = 1.0) -> Service:
        """The service once running (or ended: then its `failure` says why)."""
        return _poll(lambda: self.service(service_id),
                     lambda s: s.state not in ("deploying", "starting", "pending"),
                     timeout_s, every_s, self.transport.sleep)

    @route("POST", "/api/v1/services/{id}/stop/")
    def stop_service(self, service_id: str) -> Service:
        """Stop the service."""
        return Service.from_json(self.transport.json(
            "POST", f"/api/v1/services/{service_id}/stop/"))

    @route("POST", "/api/v1/services/{id}/predict/")
    def predict(self, service_id: str, image: str | Path | bytes, *, key: str | None = None,
                min_score: float | None = None, top_k: int | None = None) -> dict[str, Any]:
        """Predictions for one image (a path or its bytes); with the service's `key`, or the
        client's token."""
        content = image if isinstance(image, bytes) else Path(image).read_bytes()
        name = "image" if isinstance(image, bytes) else Path(image).name
        data = {k: str(v) for k, v in (("min_score", min_score), ("top_k", top_k))
                if v is not None}
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.transport.json("POST", f"/api/v1/services/{service_id}/predict/",
                                   data=data, files={"image": (name, content)},
                                   headers=headers)

    # --- events ---------------------------------------------------------------------------

    @route("GET", "/api/v1/events/")
    def events_page(self, after: int = 0, limit: int = 100, stream_type: str | None = None,
                    stream_id: str | None = None) -> dict[str, Any]:
        """One page of the tenant's event log after `after`: {results, next_after}."""
        params = {"after": after, "limit": limit, "stream_type": stream_type,
                  "stream_id": stream_id}
        return self.transport.json("GET", "/api/v1/events/", params={
            k: v for k, v in params.items() if v is not None})

    def events(self, after: int | None = None, subscriptions: list[tuple[str, str | None]]
               | None = None) -> Any:
        """The live stream as an async iterator of `Event` (see `automl_client.events`)."""
        from automl_client.events import EventStream

        return EventStream(self, after=after, subscriptions=subscriptions)


def _maybe_json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _poll(read: Callable[[], R], done: Callable[[R], bool], timeout_s: float, every_s: float,
          sleep: Callable[[float], None]) -> R:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        sleep(every_s)
