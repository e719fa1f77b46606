"""Concurrent edits of one project: a PATCH without a version applies its fields to whatever
the project is now (retrying from the new head); a PATCH with `If-Match: "<version>"` applies
only to that version and answers 409 version_conflict otherwise. The version is in the body and
in the ETag header."""


import pytest

from tests.concurrent import collide
from tests.conftest import Api


def url_of(project: dict) -> str:
    return f"/api/v1/projects/{project['id']}/"


# --- If-Match, on both databases ---------------------------------------------------------------


def test_the_version_is_in_the_etag_of_a_read_and_of_a_patch(api, tenant_a, project_of_a):
    as_a = api.as_(tenant_a)

    read = as_a.get(url_of(project_of_a))
    patched = as_a.patch(url_of(project_of_a), {"name": "Renamed"}, format="json")

    assert read["ETag"] == f'"{project_of_a["version"]}"'
    assert patched.status_code == 200
    assert patched["ETag"] == f'"{patched.json()["version"]}"'
    assert patched.json()["version"] == project_of_a["version"] + 1


@pytest.mark.parametrize("header", ['"{v}"', "{v}", 'W/"{v}"', ' "{v}" ', "*"])
def test_a_patch_at_the_current_version_applies(api, tenant_a, project_of_a, header):
    response = api.as_(tenant_a).patch(
        url_of(project_of_a), {"description": "Scratches and dents"}, format="json",
        HTTP_IF_MATCH=header.format(v=project_of_a["version"]))

    assert response.status_code == 200, response.content
    assert response.json()["description"] == "Scratches and dents"
    assert response.json()["version"] == project_of_a["version"] + 1


def test_a_patch_at_an_old_version_is_a_version_conflict_and_changes_nothing(api, tenant_a,
                                                                          project_of_a):
    as_a = api.as_(tenant_a)
    seen = project_of_a["version"]
    assert as_a.patch(url_of(project_of_a), {"name": "Theirs"}, format="json").status_code == 200

    response = as_a.patch(url_of(project_of_a), {"description": "Mine"}, format="json",
                          HTTP_IF_MATCH=f'"{seen}"')

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "version_conflict"
    assert f"version {seen + 1}" in error["message"]
    assert error["fields"] == {}
    now = as_a.get(url_of(project_of_a)).json()
    assert (now["name"], now["description"], now["version"]) == ("Theirs", "x", seen + 1)


def test_a_patch_that_changes_nothing_still_checks_the_version(api, tenant_a, project_of_a):
    response = api.as_(tenant_a).patch(url_of(project_of_a), {"name": project_of_a["name"]},
                                       format="json", HTTP_IF_MATCH='"7"')

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_conflict"


@pytest.mark.parametrize("header", ["abc", '"1.5"', '"-1"', '""', "W/", '"1", "2"'])
def test_an_if_match_that_is_not_a_version_is_bad_input(api, tenant_a, project_of_a, header):
    response = api.as_(tenant_a).patch(url_of(project_of_a), {"name": "Never"}, format="json",
                                       HTTP_IF_MATCH=header)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["If-Match"]
    assert api.as_(tenant_a).get(url_of(project_of_a)).json()["name"] == project_of_a["name"]


def test_the_schema_documents_if_match_and_the_etag(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    patch = schema["paths"]["/api/v1/projects/{id}/"]["patch"]

    headers = {p["name"]: p for p in patch["parameters"] if p["in"] == "header"}
    assert "If-Match" in headers
    assert headers["If-Match"].get("required", False) is False
    assert "version" in headers["If-Match"]["description"]
    assert "ETag" in patch["responses"]["200"]["headers"]
    assert "409" in patch["responses"]


# --- concurrent PATCHes without a version, on PostgreSQL ---------------------------------------

ROUNDS = 5


def patching(client: Api, url: str, change: dict):
    return lambda: client.patch(url, change, format="json")


@pytest.mark.django_db(transaction=True)
def test_concurrent_patches_without_a_version_both_apply(api: Api, tenant_a, postgres_only):
    for round_ in range(ROUNDS):
        created = api.as_(tenant_a).post("/api/v1/projects/", {"name": f"Race {round_}"},
                                         format="json").json()
        url = url_of(created)
        changes = [{"name": f"Renamed {round_}"}, {"description": "First"},
                   {"description": "Second"}]

        responses = collide([patching(api.as_(tenant_a), url, change) for change in changes])

        assert [r.status_code for r in responses] == [200, 200, 200], [
            r.content for r in responses]
        now = api.as_(tenant_a).get(url).json()
        assert now["name"] == f"Renamed {round_}"
        assert now["description"] in {"First", "Second"}
        assert now["version"] == created["version"] + 3
