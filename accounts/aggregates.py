"""The project aggregate: what commands check before appending."""

from eventlog.aggregates import Aggregate


class ProjectAggregate(Aggregate):
    stream_type = "project"
    not_found_message = "Project not found."

    name = ""
    description = ""
    archived = False

    def when_ProjectCreated(self, data: dict) -> None:
        self.name, self.description = data["name"], data["description"]

    def when_ProjectRenamed(self, data: dict) -> None:
        self.name = data["name"]

    def when_ProjectDescriptionChanged(self, data: dict) -> None:
        self.description = data["description"]

    def when_ProjectArchived(self, data: dict) -> None:
        self.archived = True
