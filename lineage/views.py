"""HTTP for a task version's lineage: dataset -> config -> training -> model -> evaluations,
services (SPEC T9), each part read through its app's front door, scoped to the tenant."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import RoleAllows, tenant_access
from core.errors import NotFound
from evaluation import api as evaluations
from serving import api as services
from tasks import api as tasks
from tasks.contracts import TaskLineage


def _training(task: TaskLineage) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The task's part: its datasets and configuration in, its training, its model out."""
    config_id = f"config:{task.task_id}"
    nodes = [{"id": str(task.train_dataset_id), "kind": "dataset", "role": "train"},
             {"id": config_id, "kind": "config", "algorithm": task.algorithm, **task.config},
             {"id": str(task.task_id), "kind": "training", "version": task.version,
              "state": task.state}]
    edges = [{"from": str(task.train_dataset_id), "to": config_id},
             {"from": config_id, "to": str(task.task_id)}]
    if task.test_dataset_id:
        nodes.append({"id": str(task.test_dataset_id), "kind": "dataset", "role": "test"})
        edges.append({"from": str(task.test_dataset_id), "to": str(task.task_id)})
    if task.model_id:
        nodes.append({"id": str(task.model_id), "kind": "model", "version": task.version})
        edges.append({"from": str(task.task_id), "to": str(task.model_id)})
    return nodes, edges


def lineage(tenant_id: object, task_id: object) -> dict[str, list] | None:
    """The whole graph of a tenant's task version; None when the tenant has no such task."""
    task = tasks.task_lineage(tenant_id, task_id)
    if task is None:
        return None
    nodes, edges = _training(task)
    if task.model_id is None:
        return {"nodes": nodes, "edges": edges}
    model = str(task.model_id)
    known = {node["id"] for node in nodes}
    for run in evaluations.evaluations_of_model(tenant_id, task.model_id):
        dataset = str(run.dataset_id)
        if dataset not in known:  # evaluated on a dataset the training never saw
            nodes.append({"id": dataset, "kind": "dataset", "role": "evaluation"})
            known.add(dataset)
        nodes.append({"id": str(run.evaluation_id), "kind": "evaluation", "state": run.state,
                      "dataset": dataset})
        edges += [{"from": model, "to": str(run.evaluation_id)},
                  {"from": dataset, "to": str(run.evaluation_id)}]
    for service in services.services_of_model(tenant_id, task.model_id):
        nodes.append({"id": str(service.service_id), "kind": "service", "name": service.name,
                      "state": service.state})
        edges.append({"from": model, "to": str(service.service_id)})
    return {"nodes": nodes, "edges": edges}


class TaskLineageView(APIView):
    """dataset -> config -> training -> model -> evaluations and services of the model."""

    resource = "task"
    permission_classes = [RoleAllows]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: str) -> Response:
        graph = lineage(tenant_access(request).tenant_id, pk)
        if graph is None:
            raise NotFound()
        return Response(graph)
