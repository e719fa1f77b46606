"""Events of the project stream."""

from dataclasses import dataclass

from eventlog.schema import event


@event("ProjectCreated")
@dataclass(frozen=True)
class ProjectCreated:
    name: str
    description: str
    created_by: str | None


@event("ProjectRenamed")
@dataclass(frozen=True)
class ProjectRenamed:
    name: str


@event("ProjectDescriptionChanged")
@dataclass(frozen=True)
class ProjectDescriptionChanged:
    description: str


@event("ProjectArchived")
@dataclass(frozen=True)
class ProjectArchived:
    pass
