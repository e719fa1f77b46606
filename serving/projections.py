"""Service events -> Service, ServiceInstance, ServiceUpdate and ServiceKey rows."""

from collections.abc import Sequence
from typing import Any

from eventlog import projections, rowfold
from eventlog.store import RecordedEvent
from serving.models import Service, ServiceInstance, ServiceKey, ServiceUpdate

_STATE_OF = {"ServiceStopRequested": "stopping", "ServiceStopped": "stopped",
             "ServiceFailed": "failed", "ServiceUpdateStarted": "updating",
             "ServiceUpdated": "running"}


class ServiceBoard(projections.Projection):
    """One row per service, its instances, update records and key."""

    name = "serving.services"
    event_types = {"ServiceCreated", "ServiceMeterStarted", "ServiceKeyIssued",
                   "ServiceInstanceStarted", "ServiceInstanceReady", "ServiceInstanceExited",
                   *_STATE_OF}
    models = [Service, ServiceInstance, ServiceUpdate, ServiceKey]

    def prepare(self, events: Sequence[RecordedEvent], rows: rowfold.Batch) -> None:
        # Only a ready instance reads its service (to leave "deploying").
        new = {e.stream_id for e in events if e.type == "ServiceCreated"}
        rows[Service].load({e.stream_id for e in events
                            if e.type == "ServiceInstanceReady"} - new)

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        """Fold one event into the rows it concerns."""
        data, at = event.data, event.recorded_at
        service_id = event.stream_id
        if event.type == "ServiceCreated":
            rows[Service].create(
                id=service_id, tenant_id=event.tenant_id, project_id=data["project"],
                model_id=data["model"], name=data["name"], spec_id=data["spec"],
                spec_name=data["spec_name"], billing_mode=data["billing_mode"],
                max_runtime_s=data["max_runtime_s"], instance_count=data["instances"],
                options=data["options"], state="deploying", created_at=at, updated_at=at,
                last_position=event.position)
            return
        changes: dict[str, Any] = {"updated_at": at, "last_position": event.position}
        if event.type in _STATE_OF:
            changes["state"] = _STATE_OF[event.type]
        instance_id = f"{service_id}:{data.get('instance')}"
        instances = rows[ServiceInstance]
        if event.type == "ServiceMeterStarted":
            changes["meter_id"] = data["meter_id"]
        elif event.type == "ServiceKeyIssued":
            rows[ServiceKey].upsert(service_id, tenant_id=event.tenant_id,
                                    prefix=data["prefix"], digest=data["digest"],
                                    issued_at=at)
            changes["key_prefix"] = data["prefix"]
        elif event.type == "ServiceInstanceStarted":
            instances.upsert(instance_id, tenant_id=event.tenant_id, service_id=service_id,
                             number=data["instance"], state="starting", node=data["node"],
                             model_id=None, started_at=at, ready_at=None, exited_at=None,
                             exit_reason="")
        elif event.type == "ServiceInstanceReady":
            instances.update(instance_id, state="ready", model_id=data["model"], ready_at=at)
            service = rows[Service].get(service_id)
            if service is not None and service["state"] == "deploying":
                changes.update(state="running", running_at=at)
        elif event.type == "ServiceInstanceExited":
            instances.update(instance_id, state="exited", exited_at=at,
                             exit_reason=data["reason"])
        elif event.type == "ServiceUpdateStarted":
            rows[ServiceUpdate].create(
                id=data["update"], tenant_id=event.tenant_id, service_id=service_id,
                from_model_id=data["previous_model"], to_model_id=data["model"],
                state="updating", started_at=at)
            changes["model_id"] = data["model"]
        elif event.type == "ServiceUpdated":
            rows[ServiceUpdate].update(data["update"], state="done", finished_at=at)
        elif event.type in ("ServiceStopped", "ServiceFailed"):
            changes["stopped_at"] = at
            if event.type == "ServiceStopped":
                changes["stop_reason"] = data["reason"]
            else:
                changes.update(failure_code=data["code"], failure_message=data["message"])
            updates = rows[ServiceUpdate]
            for update in updates.where(service_id=service_id, state="updating"):
                updates.change(update, state="abandoned", finished_at=at)
        elif event.type == "ServiceStopRequested":
            changes["stop_reason"] = data["reason"]
        rows[Service].update(service_id, **changes)


projections.register(ServiceBoard())
