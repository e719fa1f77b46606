"""`automl`: the platform from a shell. Run `automl --help`, or `automl COMMAND --help`.

Output: results on stdout (a table, or JSON with --json, or one field with --print FIELD);
progress and messages on stderr. Exit codes:

    0  success
    1  the API refused the request (400 and other client errors)
    2  the command line is wrong (usage)
    3  not signed in, or the credential or role does not allow it (401, 403)
    4  not found (404)
    5  a conflict with the object's state (409)
    6  insufficient funds (402)
    7  the platform is unreachable or failed (5xx, 429 after the retries)
    8  a watched task, evaluation or service ended without success
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automl_client import errors
from automl_client.client import Client
from automl_client.models import Resource, Task
from automl_client.progress import Line, duration, transfer

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_CONFLICT, EXIT_FUNDS, EXIT_SERVER, EXIT_UNSUCCESSFUL = 5, 6, 7, 8
EXIT_BY_ERROR: dict[type[errors.ApiError], int] = {
    errors.Unauthorized: EXIT_AUTH, errors.Forbidden: EXIT_AUTH,
    errors.NotFound: EXIT_NOT_FOUND, errors.Conflict: EXIT_CONFLICT,
    errors.PaymentRequired: EXIT_FUNDS, errors.ServerError: EXIT_SERVER,
    errors.Unavailable: EXIT_SERVER, errors.Throttled: EXIT_SERVER,
    errors.TransportError: EXIT_SERVER,
}


class Unsuccessful(Exception):
    """A watched resource ended in a state other than success."""


def credentials_path() -> Path:
    """Where `login`/`signup` keep the URL and token ($AUTOML_CONFIG or the user's config)."""
    if os.environ.get("AUTOML_CONFIG"):
        return Path(os.environ["AUTOML_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "automl" / "credentials.json"


def saved() -> dict[str, str]:
    try:
        return json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}


def save(url: str, token: str) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"url": url, "token": token}))


# --- output -----------------------------------------------------------------------------


def as_json(value: Any) -> Any:
    if isinstance(value, Resource):
        return value.to_json()
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a plain text table of `columns`."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def emit(args: argparse.Namespace, value: Any, columns: Sequence[str]) -> None:
    """The result on stdout: one field (--print), JSON (--json) or a table."""
    data = as_json(value)
    if args.print_field:
        items = data if isinstance(data, list) else [data]
        for item in items:
            print(_cell(item.get(args.print_field)) if isinstance(item, dict) else item)
    elif args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(table(data if isinstance(data, list) else [data], columns))


# --- commands ---------------------------------------------------------------------------


def cmd_signup(client: Client, args: argparse.Namespace) -> int:
    answer = client.signup(args.email, args.password, args.tenant)
    save(client.base_url, answer["token"])
    emit(args, {"email": answer["user"]["email"], "tenant": answer["tenant"]["name"],
                "tenant_id": answer["tenant"]["id"]}, ("email", "tenant", "tenant_id"))
    return EXIT_OK


def cmd_login(client: Client, args: argparse.Namespace) -> int:
    token = client.login(args.email, args.password, args.tenant)
    save(client.base_url, token)
    me = client.me()
    emit(args, {"email": me["user"]["email"], "tenant": me["tenant"]["name"],
                "role": me["role"]}, ("email", "tenant", "role"))
    return EXIT_OK


def cmd_projects_list(client: Client, args: argparse.Namespace) -> int:
    emit(args, list(client.projects()), ("id", "name", "created_at"))
    return EXIT_OK


def cmd_projects_create(client: Client, args: argparse.Namespace) -> int:
    emit(args, client.create_project(args.name), ("id", "name"))
    return EXIT_OK


DATASET_COLUMNS = ("id", "name", "kind", "state", "image_count", "labels")


def cmd_datasets_list(client: Client, args: argparse.Namespace) -> int:
    emit(args, list(client.datasets()), DATASET_COLUMNS)
    return EXIT_OK


def cmd_datasets_upload(client: Client, args: argparse.Namespace) -> int:
    project = client.project_named(args.project, create=True)
    line = Line(quiet=args.quiet)
    dataset = client.upload_dataset(args.file, project=project.id,
                                    name=args.name or Path(args.file).stem, kind=args.kind,
                                    format=args.format, progress=transfer(line, "uploading"))
    line.done()
    if args.wait:
        line.show("validating ...", force=True)
        dataset = client.wait_dataset(dataset.id)
        names = [str(label.get("name", label)) if isinstance(label, dict) else str(label)
                 for label in dataset.labels]
        line.done(f"{dataset.state}: {dataset.image_count} images, labels {', '.join(names)}")
    emit(args, dataset, DATASET_COLUMNS)
    if args.wait and dataset.state != "ready":
        raise Unsuccessful(f"the dataset is {dataset.state}: {dataset.errors}")
    return EXIT_OK


TASK_COLUMNS = ("id", "name", "algorithm", "state", "epoch", "best_metric", "model")


def cmd_tasks_list(client: Client, args: argparse.Namespace) -> int:
    emit(args, list(client.tasks()), TASK_COLUMNS)
    return EXIT_OK


def cmd_tasks_create(client: Client, args: argparse.Namespace) -> int:
    dataset = client.dataset(args.dataset)
    project = client.project_named(args.project, create=True).id if args.project else (
        dataset.project)
    if project is None:
        raise SystemExit("tasks create: a built-in sample belongs to no project; give --project")
    task = client.create_task(
        project=project, name=args.name or f"{dataset.name}-{args.algorithm or 'auto'}",
        scenario=args.scenario or dataset.kind, algorithm=args.algorithm,
        train_dataset=dataset.id, test_dataset=args.test_dataset, epochs=args.epochs,
        learning_rate=args.learning_rate, batch_size=args.batch_size,
        billing_mode=args.billing_mode, spec=args.spec or client.default_spec("cpu"))
    if args.watch:
        task = watch_task(client, task, Line(quiet=args.quiet))
    emit(args, task, TASK_COLUMNS)
    return check_task(task) if args.watch else EXIT_OK


def cmd_tasks_watch(client: Client, args: argparse.Namespace) -> int:
    task = watch_task(client, client.task(args.task), Line(quiet=args.quiet))
    emit(args, task, TASK_COLUMNS)
    return check_task(task)


def check_task(task: Task) -> int:
    if task.state != "succeeded":
        failure = f": {task.failure['message']}" if task.failure else ""
        raise Unsuccessful(f"task {task.id} {task.state}{failure}")
    return EXIT_OK


def progress_text(task: Task, data: dict[str, Any]) -> str:
    """'epoch 2/5  loss 0.4312  accuracy 0.9120  62%  ETA 0:41' from a progress event."""
    parts = [f"epoch {data.get('epoch', task.epoch or 0)}/{task.epochs or '?'}"]
    loss = data.get("loss", data.get("train_loss"))
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    metric = (data.get("metrics") or {}).get(task.metric_name)
    if metric is not None:
        parts.append(f"{task.metric_name} {metric:.4f}")
    if data.get("progress") is not None:
        parts.append(f"{100 * data['progress']:.0f}%")
    parts.append(f"ETA {duration(data.get('eta_s'))}")
    return "  ".join(parts)


def watch_task(client: Client, task: Task, line: Line) -> Task:
    """Follow the task live until it ends, drawing its progress; the ended task."""

    async def follow() -> None:
        stream = client.events(after=0, subscriptions=[("task", task.id)])
        async for event in stream:
            if event.stream_id != task.id:
                continue
            if event.type in ("TaskProgressed", "TaskEpochCompleted"):
                line.show(progress_text(task, event.data),
                          force=event.type == "TaskEpochCompleted")
            elif event.type == "TaskStageChanged":
                line.show(f"{event.data.get('stage')} ...", force=True)
            elif event.type in ("TaskSucceeded", "TaskFailed", "TaskStopped"):
                return

    if not task.ended:
        line.show(f"task {task.id} {task.state} ...", force=True)
        asyncio.run(follow())
    ended = client.task(task.id)
    while not ended.ended:  # the projection may trail the event by a moment
        time.sleep(0.2)
        ended = client.task(task.id)
    line.done(f"{ended.state}: {ended.metric_name} {_cell(ended.best_metric)} in "
              f"{duration(ended.elapsed_s)}")
    return ended


EVALUATION_COLUMNS = ("id", "state", "model", "dataset", "metrics")


def cmd_evaluations_show(client: Client, args: argparse.Namespace) -> int:
    if args.task:
        # the automatic evaluation is made just after the task succeeds: --wait waits for it
        deadline = time.monotonic() + (120 if args.wait else 0)
        found = list(client.evaluations(task=args.task))
        while not found and time.monotonic() < deadline:
            time.sleep(1)
            found = list(client.evaluations(task=args.task))
        if not found:
            raise errors.NotFound("not_found", f"No evaluation of task {args.task} yet.")
        evaluation = found[0]
    elif args.evaluation:
        evaluation = client.evaluation(args.evaluation)
    else:
        raise SystemExit("evaluations show: give an evaluation id or --task ID")
    if args.wait and not evaluation.ended:
        Line(quiet=args.quiet).show("evaluating ...", force=True)
        evaluation = client.wait_evaluation(evaluation.id)
    emit(args, evaluation, EVALUATION_COLUMNS)
    if args.wait and evaluation.state != "succeeded":
        raise Unsuccessful(f"evaluation {evaluation.id} {evaluation.state}")
    return EXIT_OK


def cmd_models_list(client: Client, args: argparse.Namespace) -> int:
    emit(args, list(client.models()), ("id", "version", "algorithm", "scenario", "metrics"))
    return EXIT_OK


def cmd_models_download(client: Client, args: argparse.Namespace) -> int:
    suffix = {"artifact": ".zip", "onnx": ".onnx", "torchscript": ".pt"}[args.format]
    destination = Path(args.output or f"model-{args.model}{suffix}")
    line = Line(quiet=args.quiet)
    client.download_model(args.model, destination, format=args.format,
                          progress=transfer(line, "downloading"))
    line.done()
    emit(args, {"model": args.model, "format": args.format, "path": str(destination),
                "bytes": destination.stat().st_size}, ("model", "format", "path", "bytes"))
    return EXIT_OK


SERVICE_COLUMNS = ("id", "name", "state", "model", "key")


def cmd_services_publish(client: Client, args: argparse.Namespace) -> int:
    service, key = client.publish(args.model, args.name, args.spec or client.default_spec("cpu"),
                                  billing_mode=args.billing_mode, instances=args.instances)
    if args.wait:
        Line(quiet=args.quiet).show("deploying ...", force=True)
        service = client.wait_service(service.id)
    emit(args, {**service.to_json(), "key": key}, SERVICE_COLUMNS)
    if args.wait and service.state != "running":
        raise Unsuccessful(f"service {service.id} {service.state}: {service.failure}")
    return EXIT_OK


def cmd_predict(client: Client, args: argparse.Namespace) -> int:
    answer = client.predict(args.service, args.image, key=args.key, min_score=args.min_score,
                            top_k=args.top_k)
    if args.json or args.print_field:
        emit(args, answer, ())
    else:
        print(table(answer["predictions"], ("label", "score", "bbox")))
    return EXIT_OK


def cmd_billing_usage(client: Client, args: argparse.Namespace) -> int:
    usage = client.usage(args.group_by, args.start, args.end)
    if args.json or args.print_field:
        emit(args, usage, ())
    else:
        print(table(usage.results, ("key", "seconds", "amount", "prepaid_seconds")))
        print(f"total {usage.total} (minor units of {usage.currency}) for "
              f"{duration(usage.seconds)}")
    return EXIT_OK


# --- the parser -------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="automl", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--url", help="the platform (default $AUTOML_URL, the saved login, or "
                                   "http://localhost:8000)")
    top.add_argument("--token", help="an API token (default $AUTOML_TOKEN or the saved login)")
    top.add_argument("--json", action="store_true", help="print results as JSON")
    top.add_argument("--print", dest="print_field", metavar="FIELD",
                     help="print only this field of the result (for scripts)")
    top.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    commands = top.add_subparsers(dest="command", required=True)

    def command(group: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def group(name: str, help_text: str) -> Any:
        return commands.add_parser(name, help=help_text).add_subparsers(dest="action",
                                                                        required=True)

    sub = command(commands, "signup", cmd_signup, "create a user and a tenant; saves the token")
    sub.add_argument("--email", required=True)
    sub.add_argument("--password", required=True)
    sub.add_argument("--tenant", required=True, help="the new tenant's name")
    sub = command(commands, "login", cmd_login, "sign in; saves a new API token")
    sub.add_argument("--email", required=True)
    sub.add_argument("--password", required=True)
    sub.add_argument("--tenant", help="tenant id (default: your first)")

    projects = group("projects", "projects")
    command(projects, "list", cmd_projects_list, "list projects")
    command(projects, "create", cmd_projects_create, "create a project").add_argument("name")

    datasets = group("datasets", "datasets")
    command(datasets, "list", cmd_datasets_list, "list datasets")
    sub = command(datasets, "upload", cmd_datasets_upload, "upload a zip as a dataset")
    sub.add_argument("file")
    sub.add_argument("--project", required=True, help="project id or name (made if new)")
    sub.add_argument("--name", help="default: the file's name")
    sub.add_argument("--kind", default="classification",
                     help="classification (default), detection, segmentation")
    sub.add_argument("--format", default="folders", help="folders (default), coco, voc")
    sub.add_argument("--wait", action="store_true", help="wait for its validation")

    tasks = group("tasks", "training tasks")
    command(tasks, "list", cmd_tasks_list, "list tasks")
    sub = command(tasks, "create", cmd_tasks_create, "train a model on a dataset")
    sub.add_argument("--dataset", required=True, help="the training dataset's id")
    sub.add_argument("--project", help="project id or name (default: the dataset's)")
    sub.add_argument("--algorithm", help="model architecture (default: the scenario's)")
    sub.add_argument("--scenario", help="default: the dataset's kind")
    sub.add_argument("--name")
    sub.add_argument("--test-dataset")
    sub.add_argument("--epochs", type=int)
    sub.add_argument("--learning-rate", type=float)
    sub.add_argument("--batch-size", type=int)
    sub.add_argument("--spec", help="compute spec name (default: the cheapest CPU spec)")
    sub.add_argument("--billing-mode", default="postpaid", choices=("postpaid", "prepaid"))
    sub.add_argument("--watch", action="store_true", help="follow the training live")
    command(tasks, "watch", cmd_tasks_watch,
            "follow a task live until it ends (exit 8 unless it succeeds)").add_argument("task")

    evaluations = group("evaluations", "evaluations")
    sub = command(evaluations, "show", cmd_evaluations_show, "an evaluation's metrics")
    sub.add_argument("evaluation", nargs="?")
    sub.add_argument("--task", help="the automatic evaluation of this task instead")
    sub.add_argument("--wait", action="store_true",
                     help="wait until it exists (--task) and has ended")

    models = group("models", "trained models")
    command(models, "list", cmd_models_list, "list trained models")
    sub = command(models, "download", cmd_models_download, "download a trained model")
    sub.add_argument("model")
    sub.add_argument("--format", default="artifact", choices=("artifact", "onnx", "torchscript"))
    sub.add_argument("--output", "-o", help="file to write (default model-ID.zip/.onnx/.pt)")

    services = group("services", "prediction services")
    sub = command(services, "publish", cmd_services_publish, "publish a model as a service")
    sub.add_argument("model")
    sub.add_argument("--name", required=True)
    sub.add_argument("--spec", help="compute spec name (default: the cheapest CPU spec)")
    sub.add_argument("--billing-mode", default="postpaid", choices=("postpaid", "prepaid"))
    sub.add_argument("--instances", type=int)
    sub.add_argument("--wait", action="store_true", help="wait until it runs")

    sub = command(commands, "predict", cmd_predict, "predict one image with a service")
    sub.add_argument("service")
    sub.add_argument("image")
    sub.add_argument("--key", help="the service's prediction key (default: your token)")
    sub.add_argument("--min-score", type=float)
    sub.add_argument("--top-k", type=int)

    billing = group("billing", "money")
    sub = command(billing, "usage", cmd_billing_usage, "usage and its cost over a period")
    sub.add_argument("--group-by", default="resource",
                     choices=("resource", "project", "spec", "day", "month"))
    sub.add_argument("--from", dest="start", help="ISO date or datetime (default: month start)")
    sub.add_argument("--to", dest="end", help="ISO date or datetime, exclusive")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (see the module's doc)."""
    args = parser().parse_args(argv)
    login = saved()
    url = args.url or os.environ.get("AUTOML_URL") or login.get("url") or "http://localhost:8000"
    token = args.token or os.environ.get("AUTOML_TOKEN") or login.get("token")
    client = Client(url, token)
    try:
        return args.handler(client, args)
    except errors.ApiError as exc:
        fields = "".join(f"\n  {name}: {'; '.join(why)}" for name, why in exc.fields.items())
        print(f"automl: {exc.code}: {exc.message}{fields}", file=sys.stderr)
        return next((code for cls, code in EXIT_BY_ERROR.items() if isinstance(exc, cls)),
                    EXIT_REFUSED)
    except Unsuccessful as exc:
        print(f"automl: {exc}", file=sys.stderr)
        return EXIT_UNSUCCESSFUL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
