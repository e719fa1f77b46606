"""The console's own views: sign-in, the session's tenant, sign-out, and what each role sees.

The pages are shells; their data comes from the public API, which these tests reach with the
same session cookie (and CSRF token) a browser has.
"""

import re

import pytest
from django.test import Client

from tests.conftest import add_member, sign_up

NAV_LINK = re.compile(r'<li><a href="/console/(\w+)/"')


def signed_in(account, **client_options) -> Client:
    client = Client(**client_options)
    form = client.get("/console/signin/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    response = client.post("/console/signin/", {"email": account.email,
                                                "password": account.password,
                                                "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.content
    return client


def nav_of(response) -> list[str]:
    return NAV_LINK.findall(response.content.decode())


def actions_of(response) -> set[str]:
    return set(re.search(r'data-actions="([^"]*)"', response.content.decode())[1].split())


@pytest.mark.parametrize("path", ["/console/", "/console/tasks/", "/console/billing/",
                                  "/console/tasks/00000000-0000-0000-0000-000000000000/"])
def test_anonymous_visitors_are_sent_to_sign_in(db, path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/console/signin/?next={path}"


def test_sign_in_page_is_a_labelled_form(db):
    page = Client().get("/console/signin/").content.decode()
    assert '<label for="email">' in page and '<label for="password">' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_wrong_password_is_refused_with_a_message(api, tenant_a):
    response = Client().post("/console/signin/", {"email": tenant_a.email,
                                                  "password": "not the password"})
    assert response.status_code == 401
    assert "do not match" in response.content.decode()
    assert "_auth_user_id" not in Client().session


def test_sign_in_starts_a_session_in_the_first_tenant_and_the_api_accepts_it(api, tenant_a):
    client = Client()
    response = client.post("/console/signin/", {"email": tenant_a.email,
                                                "password": tenant_a.password,
                                                "next": "/console/datasets/"})
    assert response.status_code == 302
    assert response["Location"] == "/console/datasets/"
    assert client.session["tenant_id"] == tenant_a.tenant_id
    me = client.get("/api/v1/me/").json()
    assert me["tenant"]["id"] == tenant_a.tenant_id and me["role"] == "owner"


def test_sign_in_attempts_are_throttled_per_address(api, tenant_a, monkeypatch):
    from django.core.cache import cache

    from core.throttling import AnonymousRateThrottle

    cache.clear()
    monkeypatch.setattr(AnonymousRateThrottle, "THROTTLE_RATES", {"anon": "3/min"})
    client = Client()
    for _ in range(3):
        wrong = client.post("/console/signin/", {"email": tenant_a.email, "password": "guess"})
        assert wrong.status_code == 401
    refused = client.post("/console/signin/", {"email": tenant_a.email,
                                               "password": tenant_a.password})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    cache.clear()


def test_sign_in_never_redirects_off_the_console(api, tenant_a):
    response = Client().post("/console/signin/", {"email": tenant_a.email,
                                                  "password": tenant_a.password,
                                                  "next": "https://evil.example/console/"})
    assert response["Location"] == "/console/"


def test_session_writes_need_the_csrf_token(api, tenant_a):
    client = signed_in(tenant_a, enforce_csrf_checks=True)
    refused = client.post("/api/v1/projects/", {"name": "no token"},
                          content_type="application/json")
    assert refused.status_code == 403
    page = client.get("/console/projects/").content.decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)[1]
    accepted = client.post("/api/v1/projects/", {"name": "with token"},
                           content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content


def test_tenant_switch_changes_what_the_api_answers_for(api, tenant_a):
    other_owner = sign_up(api, tenant="Tenant B")
    member = add_member(api, other_owner, "viewer")  # owns a tenant of its own, views B
    client = signed_in(member)
    first = client.get("/api/v1/me/").json()
    assert first["role"] == "owner" and first["tenant"]["id"] != other_owner.tenant_id
    page = client.get("/console/tasks/").content.decode()
    assert other_owner.tenant_id in page  # the switcher offers both tenants

    response = client.post("/console/tenant/", {"tenant": other_owner.tenant_id,
                                                "next": "/console/projects/"})
    assert response.status_code == 302 and response["Location"] == "/console/projects/"
    me = client.get("/api/v1/me/").json()
    assert me["tenant"]["id"] == other_owner.tenant_id and me["role"] == "viewer"


def test_switching_to_a_tenant_one_is_not_in_is_refused(api, tenant_a):
    stranger = sign_up(api, tenant="Not yours")
    client = signed_in(tenant_a)
    response = client.post("/console/tenant/", {"tenant": stranger.tenant_id})
    assert response.status_code == 404
    assert client.session["tenant_id"] == tenant_a.tenant_id
    assert client.post("/console/tenant/", {"tenant": "not-an-id"}).status_code == 404


def test_finance_sees_billing_and_may_change_nothing_else(api, tenant_a):
    finance = signed_in(add_member(api, tenant_a, "finance"))
    finance.post("/console/tenant/", {"tenant": tenant_a.tenant_id})
    assert finance.get("/console/").headers["Location"] == "/console/tasks/"
    page = finance.get("/console/billing/")
    assert page.status_code == 200
    assert nav_of(page) == ["projects", "tasks", "datasets", "evaluations", "services",
                            "billing"]
    assert actions_of(page) == {"wallet.topup", "usage.view"}
    assert finance.get("/api/v1/billing/wallet/").status_code == 200


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_roles_without_money_do_not_see_billing(api, tenant_a, role):
    client = signed_in(add_member(api, tenant_a, role))
    client.post("/console/tenant/", {"tenant": tenant_a.tenant_id})
    tasks = client.get("/console/tasks/")
    assert "billing" not in nav_of(tasks)
    refused = client.get("/console/billing/")
    assert refused.status_code == 403
    assert f"The {role} role cannot open Billing." in refused.content.decode()
    expected = {"developer": {"project.create", "dataset.create", "task.create", "task.update",
                              "evaluation.create", "service.create", "service.update"},
                "viewer": set()}[role]
    assert actions_of(tasks) == expected


def test_every_page_renders_for_an_owner(api, tenant_a):
    client = signed_in(tenant_a)
    some_id = "00000000-0000-0000-0000-000000000001"
    for path in ["projects/", "tasks/", f"tasks/{some_id}/", "datasets/", f"datasets/{some_id}/",
                 "evaluations/", f"evaluations/{some_id}/", "services/", f"services/{some_id}/",
                 "billing/"]:
        response = client.get(f"/console/{path}")
        assert response.status_code == 200, path
        assert 'id="live-status"' in response.content.decode()


def test_unknown_console_pages_are_404(api, tenant_a):
    assert signed_in(tenant_a).get("/console/nothing-here/").status_code == 404


def test_sign_out_ends_the_session(api, tenant_a):
    client = signed_in(tenant_a)
    assert client.post("/console/signout/").status_code == 302
    assert client.get("/api/v1/me/").status_code in (401, 403)
    assert client.get("/console/tasks/").status_code == 302


def test_static_files_are_served_by_the_app(db):
    """WhiteNoise serves the console's scripts from the app (no collectstatic in `make run`)."""
    for name in ("core.js", "charts.js", "console.css", "evaluation.js"):
        response = Client().get(f"/static/console/{name}")
        assert response.status_code == 200, name
