"""A rebuild replays the whole log into empty read models and gives identical rows."""

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Project
from eventlog.models import ProjectionCheckpoint
from eventlog.projections import registered
from tests.conftest import sign_up

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot() -> dict[str, list[dict]]:
    """Every row of every registered projection's read models, in a stable order."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values())
        for projection in registered() for model in projection.models
    }


def scripted_history(api) -> None:
    for tenant in ("North", "South"):
        owner = sign_up(api, tenant=tenant)
        client = api.as_(owner)
        ids = [client.post("/api/v1/projects/", {"name": f"{tenant} {n}", "description": "d"},
                           format="json").json()["id"] for n in range(4)]
        client.patch(f"/api/v1/projects/{ids[0]}/", {"name": "Renamed"}, format="json")
        client.patch(f"/api/v1/projects/{ids[1]}/", {"description": "new words"}, format="json")
        client.delete(f"/api/v1/projects/{ids[2]}/")
        client.post("/api/v1/projects/", {"name": f"{tenant} 2"}, format="json")  # name reused


def test_rebuild_gives_identical_rows(api):
    scripted_history(api)
    before = snapshot()
    assert len(before["accounts.Project"]) == 10
    assert any(row["archived_at"] for row in before["accounts.Project"])

    call_command("rebuild_projections")

    assert snapshot() == before
    checkpoint = ProjectionCheckpoint.objects.get(name="accounts.projects")
    assert checkpoint.position == max(row["last_position"] for row in before["accounts.Project"])


def test_rebuild_really_replays_from_the_log(api):
    scripted_history(api)
    before = snapshot()
    Project._base_manager.all().delete()  # read models are disposable; the log is the truth
    call_command("rebuild_projections", "accounts.projects")
    assert snapshot() == before


def test_unknown_projection_name_is_refused(api):
    with pytest.raises(CommandError, match="Unknown projection"):
        call_command("rebuild_projections", "no.such.projection")


def test_the_command_reports_its_progress_rate_and_eta(api):
    scripted_history(api)
    out = io.StringIO()
    call_command("rebuild_projections", "accounts.projects", "--page", "3", stdout=out)
    lines = out.getvalue().splitlines()
    assert sum("events/s, ETA" in line for line in lines) >= 5  # one a page of 3 of 16
    assert lines[-1] == "accounts.projects: replayed 16 event(s)"
    with pytest.raises(CommandError, match="--page"):
        call_command("rebuild_projections", "--page", "0")
