"""Project events -> the Project read model."""

from accounts.models import Project
from eventlog import projections, rowfold
from eventlog.store import RecordedEvent


class ProjectList(projections.Projection):
    name = "accounts.projects"
    event_types = {"ProjectCreated", "ProjectRenamed", "ProjectDescriptionChanged",
                   "ProjectArchived"}
    models = [Project]

    def fold(self, event: RecordedEvent, rows: rowfold.Batch) -> None:
        projects = rows[Project]
        if event.type == "ProjectCreated":
            projects.create(
                id=event.stream_id, tenant_id=event.tenant_id, name=event.data["name"],
                description=event.data["description"], created_by=event.data["created_by"],
                created_at=event.recorded_at, updated_at=event.recorded_at,
                version=event.version, last_position=event.position,
            )
            return
        changes = {"updated_at": event.recorded_at, "version": event.version,
                   "last_position": event.position}
        if event.type == "ProjectRenamed":
            changes["name"] = event.data["name"]
        elif event.type == "ProjectDescriptionChanged":
            changes["description"] = event.data["description"]
        elif event.type == "ProjectArchived":
            changes["archived_at"] = event.recorded_at
        projects.update(event.stream_id, **changes)


projections.register(ProjectList())
