"""Roles, members, the project lifecycle and tenant-scoped managers."""

import pytest

from accounts.models import Membership, Project
from accounts.roles import can
from accounts.scoping import TenantScopeRequired
from tests.conftest import add_member, sign_up
from tests.feed import read_feed

# --- the role table ----------------------------------------------------------------------------

ALLOWED, REFUSED = True, False
ROLE_TABLE = [
    # role,       resource,   action,   allowed
    ("viewer", "project", "view", ALLOWED),
    ("viewer", "project", "create", REFUSED),
    ("viewer", "event", "view", ALLOWED),
    ("viewer", "wallet", "view", REFUSED),
    ("viewer", "member", "view", REFUSED),
    ("developer", "project", "create", ALLOWED),
    ("developer", "project", "update", ALLOWED),
    ("developer", "project", "delete", REFUSED),
    ("developer", "task", "create", ALLOWED),
    ("developer", "wallet", "view", REFUSED),
    ("finance", "wallet", "view", ALLOWED),
    ("finance", "wallet", "topup", ALLOWED),
    ("finance", "usage", "view", ALLOWED),
    ("finance", "project", "create", REFUSED),
    ("admin", "member", "create", ALLOWED),
    ("admin", "member", "update", REFUSED),
    ("admin", "member", "delete", REFUSED),
    ("admin", "project", "delete", ALLOWED),
    ("owner", "member", "update", ALLOWED),
    ("owner", "member", "delete", ALLOWED),
    ("owner", "spaceship", "view", REFUSED),
    ("owner", "project", "launch", REFUSED),
    ("nobody", "project", "view", REFUSED),
]


@pytest.mark.parametrize(("role", "resource", "action", "allowed"), ROLE_TABLE,
                         ids=[f"{r}-{res}-{a}" for r, res, a, _ in ROLE_TABLE])
def test_role_table(role, resource, action, allowed):
    assert can(role, resource, action) is allowed


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("finance", 403),
                                               ("developer", 201), ("admin", 201)])
def test_who_may_create_a_project_through_the_api(api, tenant_a, role, status):
    member = add_member(api, tenant_a, role)

    response = api.as_(member).post("/api/v1/projects/", {"name": f"By {role}"}, format="json")

    assert response.status_code == status, response.content
    if status == 403:
        assert response.json()["error"]["code"] == "permission_denied"


def test_developer_may_not_delete_a_project_but_an_admin_may(api, tenant_a, project_of_a):
    developer, admin = add_member(api, tenant_a, "developer"), add_member(api, tenant_a, "admin")
    url = f"/api/v1/projects/{project_of_a['id']}/"

    refused = api.as_(developer).delete(url)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert api.as_(admin).delete(url).status_code == 204


def test_me_shows_the_role_in_the_tenant_of_the_token(api, tenant_a):
    viewer = add_member(api, tenant_a, "viewer")

    me = api.as_(viewer).get("/api/v1/me/").json()

    assert me["role"] == "viewer"
    assert me["tenant"]["id"] == tenant_a.tenant_id


# --- the project lifecycle ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the event feed shows committed events only
def test_project_lifecycle(api, transactional_db, tenant_a):
    as_a = api.as_(tenant_a)

    created = as_a.post("/api/v1/projects/", {"name": "Defects", "description": "Scratches"},
                        format="json")
    assert created.status_code == 201
    project = created.json()
    assert {"id", "name", "description", "created_at"} <= set(project)
    assert (project["name"], project["description"], project["version"]) == (
        "Defects", "Scratches", 1)
    url = f"/api/v1/projects/{project['id']}/"
    assert as_a.get(url).json() == project

    renamed = as_a.patch(url, {"name": "Surface defects"}, format="json")
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["version"]) == ("Surface defects", 2)
    events = read_feed(as_a, f"?stream_id={project['id']}", until=lambda events: len(events) >= 2)
    assert [(e["type"], e["version"]) for e in events] == [("ProjectCreated", 1),
                                                           ("ProjectRenamed", 2)]
    assert events[-1]["data"] == {"name": "Surface defects"}
    assert all(e["stream_type"] == "project" for e in events)

    assert as_a.delete(url).status_code == 204
    assert project["id"] not in [p["id"] for p in as_a.get("/api/v1/projects/").json()["results"]]
    archived = as_a.get("/api/v1/projects/?archived=true").json()["results"]
    assert [p["id"] for p in archived] == [project["id"]]
    assert as_a.get(url).status_code == 404  # deleted, as far as everyday use goes
    after = as_a.get(url + "?archived=true")
    assert after.status_code == 200
    assert after.json()["archived_at"] is not None
    assert after.json()["version"] == 3
    events = read_feed(as_a, f"?stream_id={project['id']}", until=lambda events: len(events) >= 3)
    assert [e["type"] for e in events][-1] == "ProjectArchived"


def test_patch_with_nothing_new_changes_nothing(api, tenant_a, project_of_a):
    url = f"/api/v1/projects/{project_of_a['id']}/"

    response = api.as_(tenant_a).patch(url, {"name": project_of_a["name"]}, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == project_of_a["version"]


def test_archived_name_is_free_again(api, tenant_a, project_of_a):
    as_a = api.as_(tenant_a)
    assert as_a.delete(f"/api/v1/projects/{project_of_a['id']}/").status_code == 204

    again = as_a.post("/api/v1/projects/", {"name": project_of_a["name"]}, format="json")

    assert again.status_code == 201
    assert again.json()["id"] != project_of_a["id"]


def test_deleting_twice_is_not_found_and_archiving_twice_is_refused(api, tenant_a,
                                                                    project_of_a):
    url = f"/api/v1/projects/{project_of_a['id']}/"
    assert api.as_(tenant_a).delete(url).status_code == 204

    again = api.as_(tenant_a).delete(url)
    archived_again = api.as_(tenant_a).delete(url + "?archived=true")

    assert again.status_code == 404
    assert archived_again.status_code == 409
    assert archived_again.json()["error"]["code"] == "project_archived"


def test_same_project_name_in_two_tenants_is_fine(api, tenant_a, tenant_b, project_of_a):
    response = api.as_(tenant_b).post("/api/v1/projects/", {"name": project_of_a["name"]},
                                      format="json")

    assert response.status_code == 201


# --- members -----------------------------------------------------------------------------------


def membership_of(account) -> str:
    return str(Membership.objects.for_tenant(account.tenant_id).get(user_id=account.user_id).id)


def test_owner_adds_a_developer_and_changes_their_role(api, tenant_a):
    newcomer = sign_up(api, tenant="Newcomer's own")
    as_owner = api.as_(tenant_a)

    added = as_owner.post("/api/v1/members/", {"email": newcomer.email, "role": "developer"},
                          format="json")

    assert added.status_code == 201
    member = added.json()
    assert (member["email"], member["role"]) == (newcomer.email, "developer")
    listed = as_owner.get("/api/v1/members/").json()["results"]
    assert {(m["email"], m["role"]) for m in listed} == {(tenant_a.email, "owner"),
                                                        (newcomer.email, "developer")}

    changed = as_owner.patch(f"/api/v1/members/{member['id']}/", {"role": "finance"},
                             format="json")

    assert changed.status_code == 200
    assert changed.json()["role"] == "finance"
    assert as_owner.get(f"/api/v1/members/{member['id']}/").json()["role"] == "finance"


def test_the_last_owner_cannot_be_demoted_or_removed(api, tenant_a):
    url = f"/api/v1/members/{membership_of(tenant_a)}/"

    demoted = api.as_(tenant_a).patch(url, {"role": "admin"}, format="json")
    removed = api.as_(tenant_a).delete(url)

    for response in (demoted, removed):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "last_owner"
    assert api.as_(tenant_a).get("/api/v1/me/").json()["role"] == "owner"


def test_an_owner_can_step_down_once_there_is_another(api, tenant_a):
    second_owner = add_member(api, tenant_a, "owner")

    response = api.as_(second_owner).patch(f"/api/v1/members/{membership_of(tenant_a)}/",
                                           {"role": "admin"}, format="json")

    assert response.status_code == 200
    assert api.as_(tenant_a).get("/api/v1/me/").json()["role"] == "admin"


def test_removing_a_member_revokes_their_tokens_in_that_tenant(api, tenant_a):
    member = add_member(api, tenant_a, "developer")
    assert api.as_(member).get("/api/v1/me/").status_code == 200

    removed = api.as_(tenant_a).delete(f"/api/v1/members/{membership_of(member)}/")

    assert removed.status_code == 204
    response = api.as_(member).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    own_tenant = api.post("/api/v1/auth/token/", {"email": member.email,
                          "password": member.password}, format="json")
    assert api.as_(own_tenant.json()["token"]).get("/api/v1/me/").status_code == 200


def test_an_admin_adds_members_but_may_not_change_or_remove_them(api, tenant_a):
    admin, developer = add_member(api, tenant_a, "admin"), add_member(api, tenant_a, "developer")
    url = f"/api/v1/members/{membership_of(developer)}/"
    newcomer = sign_up(api, tenant="Newcomer's own")

    added = api.as_(admin).post("/api/v1/members/", {"email": newcomer.email, "role": "viewer"},
                                format="json")
    changed = api.as_(admin).patch(url, {"role": "owner"}, format="json")
    removed = api.as_(admin).delete(url)

    assert added.status_code == 201
    for response in (changed, removed):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert api.as_(developer).get("/api/v1/me/").json()["role"] == "developer"


@pytest.mark.parametrize("role", ["developer", "finance", "viewer"])
def test_members_are_managed_by_managers_only(api, tenant_a, role):
    member = add_member(api, tenant_a, role)

    response = api.as_(member).get("/api/v1/members/")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_user_already_in_the_tenant_is_not_added_twice(api, tenant_a):
    member = add_member(api, tenant_a, "viewer")

    response = api.as_(tenant_a).post("/api/v1/members/", {"email": member.email,
                                      "role": "developer"}, format="json")

    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]


# --- tenant-scoped managers --------------------------------------------------------------------


def test_reading_projects_without_naming_a_tenant_is_an_error(tenant_a, project_of_a):
    unscoped_reads = [
        lambda: list(Project.objects.filter(name="Defects")),
        lambda: Project.objects.all().count(),
        lambda: Project.objects.filter(pk=project_of_a["id"]).exists(),
        lambda: Project.objects.get(pk=project_of_a["id"]),
        lambda: Project.objects.filter(name="Defects").first(),
        lambda: Project.objects.filter(name="Defects").update(name="Leaked"),
    ]
    for read in unscoped_reads:
        with pytest.raises(TenantScopeRequired):
            read()


def test_for_tenant_and_unscoped_read_on_purpose(api, tenant_a, tenant_b, project_of_a):
    api.as_(tenant_b).post("/api/v1/projects/", {"name": "Plans of B"}, format="json")

    of_a = Project.objects.for_tenant(tenant_a.tenant_id)
    of_b = Project.objects.for_tenant(tenant_b.tenant_id)

    assert [p.name for p in of_a] == ["Defects"]
    assert [str(pk) for pk in of_a.values_list("id", flat=True)] == [project_of_a["id"]]
    assert of_b.filter(pk=project_of_a["id"]).exists() is False
    assert {p.name for p in Project.objects.unscoped()} == {"Defects", "Plans of B"}
    assert Project.objects.unscoped().filter(name="Defects").count() == 1
