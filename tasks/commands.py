"""State changes of tasks asked for through the API: create, stop, restart, retrain, templates.

Creating or restarting a task starts its billing meter in the same transaction: a postpaid
start freezes 2 hours of the spec's price, and when that is refused (402) nothing is written.
The worker's own writes (claim, progress, ending, a lost attempt's interruption) are the
commands of tasks.worker_commands; the training itself is tasks.runner.
"""

import uuid
from typing import Any

from django.db import transaction

from accounts.api import open_project
from billing import api as billing
from core import context
from core.broker import GPU_QUEUE
from core.errors import TaskNotRestartable, TaskNotRunning, ValidationFailed
from core.tenancy import TenantAccess
from core.work import Work
from eventlog.aggregates import retry_on_conflict
from modelregistry import api as modelregistry
from tasks.aggregates import TaskAggregate
from tasks.events import (
    TaskCreated,
    TaskQueued,
    TaskStopped,
    TaskStopRequested,
    TaskTemplateSaved,
)
from tasks.models import Task, TaskTemplate
from training_runtime import catalogue  # torch-free: the builders stay on the worker

RESOURCE_TYPE = "task"
TRAIN = Work("train_task", GPU_QUEUE)  # declared in tasks.actors
SCENARIOS = catalogue.SCENARIOS  # one list: the catalogue's
DEFAULT_MAX_DURATION_S = 3600
PARAMETER_NAMES = ("scenario", "model", "train_dataset", "test_dataset", "output_path",
                   "target_metric", "max_duration_s", "epochs", "learning_rate", "batch_size",
                   "warmup_epochs", "billing_mode", "spec")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _model_and_metric(scenario: str, model: str | None) -> tuple[str, str]:
    try:
        entry = catalogue.get(scenario, model or None)
    except catalogue.UnknownModelError as exc:
        raise _invalid("model", str(exc)) from None
    return entry.name, entry.metric


def _datasets(tenant_id: object, scenario: str, train: object, test: object | None
              ) -> tuple[Any, Any | None]:
    from datasets import api as datasets

    train_set = datasets.get_usable(tenant_id, train, field="train_dataset")
    test_set = datasets.get_usable(tenant_id, test, field="test_dataset") if test else None
    for field, dataset in (("train_dataset", train_set), ("test_dataset", test_set)):
        if dataset is not None and dataset.kind != scenario:
            raise _invalid(field, f"This is a {dataset.kind} dataset; the task's scenario is "
                                  f"{scenario}.")
    if test_set is not None and train_set.builtin:
        raise _invalid("test_dataset", "A task on a built-in sample dataset evaluates on the "
                                       "sample's own hold-out split; it cannot take another "
                                       "test set.")
    return train_set, test_set


def _config(values: dict[str, Any]) -> dict[str, Any]:
    config = {name: values.get(name) for name in ("epochs", "learning_rate", "batch_size",
                                                  "warmup_epochs")}
    epochs, warmup = config["epochs"], config["warmup_epochs"]
    if epochs is not None and warmup is not None and warmup >= epochs:
        raise _invalid("warmup_epochs", "Warmup must be shorter than the training "
                                        f"({epochs} epochs).")
    if values.get("seed") is not None:  # only when asked: a task without one keeps its shape
        config["seed"] = values["seed"]
    return config


def create_task(access: TenantAccess, values: dict[str, Any], *, job: Task | None = None
                ) -> Task:
    """Create a task (a new job, or the next version of `job`) and queue it; 402 if short."""
    tenant_id = access.tenant_id
    project = open_project(tenant_id, values["project"])
    if project is None:
        raise _invalid("project", "No such project in this tenant.")
    scenario = values["scenario"]
    if scenario not in SCENARIOS:
        raise _invalid("scenario", f"Must be one of {', '.join(SCENARIOS)}.")
    model, metric = _model_and_metric(scenario, values.get("model"))
    modelregistry.check_output_path(tenant_id, values.get("output_path") or "")
    train_set, test_set = _datasets(tenant_id, scenario, values["train_dataset"],
                                    values.get("test_dataset"))
    spec = billing.spec(values["spec"])
    config = _config(values)
    task_id = uuid.uuid4()
    version = 1
    if job is not None:
        version = Task.objects.for_tenant(tenant_id).filter(job_id=job.job_id).count() + 1
    with transaction.atomic(), context.scope(actor=access.actor):
        meter = billing.start(tenant_id, resource_type=RESOURCE_TYPE, resource_id=task_id,
                              spec=spec, mode=values["billing_mode"], project_id=project.id)
        task = TaskAggregate(tenant_id, task_id)
        task.append(
            TaskCreated(project=str(project.id), job=str(job.job_id if job else task_id),
                        version=version, name=values["name"], scenario=scenario, model=model,
                        metric_name=metric, train_dataset=str(train_set.id),
                        test_dataset=str(test_set.id) if test_set else None,
                        output_path=values.get("output_path") or "", config=config,
                        target_metric=values.get("target_metric"),
                        max_duration_s=values.get("max_duration_s") or DEFAULT_MAX_DURATION_S,
                        billing_mode=values["billing_mode"], spec=str(spec.id),
                        spec_name=spec.name),
            TaskQueued(attempt=1, meter_id=str(meter.id)))
        enqueue_on_commit(task_id, 1)
        # Read inside the transaction: the answer is the task as created (queued), not
        # whatever a fast worker has made of it by the time the response is written.
        return Task.objects.for_tenant(tenant_id).get(id=task_id)


def enqueue_on_commit(task_id: uuid.UUID | str, attempt: int) -> None:
    """Send the attempt to a GPU worker once the transaction that queued it commits."""
    TRAIN.send_on_commit(str(task_id), attempt)


def parameters_of(task: Task) -> dict[str, Any]:
    """The create parameters a task was made with (for retraining and templates)."""
    return {"project": str(task.project_id), "name": task.name, "scenario": task.scenario,
            "model": task.model_name, "train_dataset": str(task.train_dataset_id),
            "test_dataset": str(task.test_dataset_id) if task.test_dataset_id else None,
            "output_path": task.output_path, "target_metric": task.target_metric,
            "max_duration_s": task.max_duration_s, **task.config,
            "billing_mode": task.billing_mode, "spec": str(task.spec_id)}


def retrain(access: TenantAccess, task_id: object, overrides: dict[str, Any]) -> Task:
    """A new version of the task's job with its parameters, changed by `overrides`."""
    task = _task(access, task_id)
    values = {**parameters_of(task), **{k: v for k, v in overrides.items() if v is not None}}
    return create_task(access, values, job=task)


def _task(access: TenantAccess, task_id: object) -> Task:
    from core.errors import NotFound

    task = Task.objects.for_tenant(access.tenant_id).filter(id=task_id).first()
    if task is None:
        raise NotFound("Task not found.")
    return task


def request_stop(tenant_id: object, task_id: object, reason: str, actor: str) -> None:
    """Stop a queued task now; ask a running one to stop (its worker answers within a step).
    The worker appends progress at any moment: a stop that meets it is checked again."""

    def stop_once() -> None:
        with context.scope(actor=actor):
            task = TaskAggregate.load(tenant_id, task_id)
            task.require(task.active, f"The task is {task.state}; only a queued or running "
                                      "task can be stopped.", TaskNotRunning)
            if task.stop_requested:
                return
            if task.state == "queued":
                task.append(TaskStopRequested(reason=reason),
                            TaskStopped(stop_reason=reason, best_metric=None, elapsed_s=0.0))
                billing.stop_resource(tenant_id, RESOURCE_TYPE, task_id, reason=reason)
            else:
                task.append(TaskStopRequested(reason=reason))

    retry_on_conflict(stop_once)


def stop(access: TenantAccess, task_id: object) -> Task:
    """The user's stop."""
    _task(access, task_id)
    request_stop(access.tenant_id, task_id, "user", access.actor)
    return _task(access, task_id)


def restart(access: TenantAccess, task_id: object) -> Task:
    """Queue a failed, stopped or interrupted task again; it continues from its checkpoint."""
    current = _task(access, task_id)
    spec = billing.spec(current.spec_id)
    with transaction.atomic(), context.scope(actor=access.actor):
        task = TaskAggregate.load(access.tenant_id, task_id)
        task.require(task.state in ("failed", "stopped", "interrupted"),
                     f"The task is {task.state}; only a failed, stopped or interrupted task "
                     "can be restarted.", TaskNotRestartable)
        billing.stop_resource(access.tenant_id, RESOURCE_TYPE, task_id, reason="restarted")
        queue_next_attempt(task, current, spec=spec)
        return _task(access, task_id)


def queue_next_attempt(aggregate: TaskAggregate, task: Task, *, spec: Any = None) -> None:
    """Queue the task's next attempt on a new billing meter (it continues from the checkpoint):
    a restart's and a lost attempt's retry alike. Raises what billing refuses (402)."""
    meter = billing.start(task.tenant_id, resource_type=RESOURCE_TYPE, resource_id=task.id,
                          spec=spec or billing.spec(task.spec_id), mode=task.billing_mode,
                          project_id=task.project_id)
    aggregate.append(TaskQueued(attempt=aggregate.attempt + 1, meter_id=str(meter.id)))
    enqueue_on_commit(task.id, aggregate.attempt)


def save_template(access: TenantAccess, task_id: object, name: str) -> TaskTemplate:
    """Save a task's parameters as a reusable template."""
    from eventlog.store import Stream, append

    task = _task(access, task_id)
    parameters = {k: v for k, v in parameters_of(task).items() if k not in ("project", "name")}
    template_id = uuid.uuid4()
    with context.scope(actor=access.actor):
        append(Stream.of(access.tenant_id, "task_template", template_id), 0,
               [TaskTemplateSaved(name=name, parameters=parameters, source_task=str(task.id))])
    return TaskTemplate.objects.for_tenant(access.tenant_id).get(id=template_id)
