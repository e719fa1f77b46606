"""What each console page shows and who may open it, derived from the role table."""

from dataclasses import dataclass

from accounts.api import can


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    resource: str  # the role table's resource whose "view" opens the page
    section: str  # the navigation entry it belongs to


PAGES = {page.name: page for page in (
    Page("projects", "Projects", "project", "projects"),
    Page("tasks", "Tasks", "task", "tasks"),
    Page("task", "Task", "task", "tasks"),
    Page("datasets", "Datasets", "dataset", "datasets"),
    Page("dataset", "Dataset", "dataset", "datasets"),
    Page("evaluations", "Evaluations", "evaluation", "evaluations"),
    Page("evaluation", "Evaluation report", "evaluation", "evaluations"),
    Page("services", "Services", "service", "services"),
    Page("service", "Service", "service", "services"),
    Page("billing", "Billing", "wallet", "billing"),
)}
NAV = ("projects", "tasks", "datasets", "evaluations", "services", "billing")

# What the page scripts may offer (buttons and forms): resource.action pairs of the role table.
ACTIONS = (("project", "create"), ("dataset", "create"), ("task", "create"), ("task", "update"),
           ("evaluation", "create"), ("service", "create"), ("service", "update"),
           ("wallet", "topup"), ("usage", "view"))


def may_open(role: str, name: str) -> bool:
    page = PAGES.get(name)
    return page is not None and can(role, page.resource, "view")


def navigation(role: str) -> list[Page]:
    """The navigation entries a role sees: exactly the pages it may open."""
    return [PAGES[name] for name in NAV if may_open(role, name)]


def allowed_actions(role: str) -> list[str]:
    return [f"{resource}.{action}" for resource, action in ACTIONS if can(role, resource, action)]


def first_page(role: str) -> str | None:
    """Where a role lands: its tasks, or billing for a role that only sees money."""
    for name in ("tasks", "billing", *NAV):
        if may_open(role, name):
            return name
    return None
