"""Links the API returns are built on PUBLIC_URL, never on the request's Host header; the console
may not be framed; HTTPS redirects spare the health check."""

from django.test import Client


def test_a_forged_host_does_not_change_a_next_link(api, tenant_a, settings):
    settings.PUBLIC_URL = "https://automl.example.com"
    for name in ("one", "two"):
        api.as_(tenant_a).post("/api/v1/projects/", {"name": name}, format="json")
    page = api.as_(tenant_a).get("/api/v1/projects/?limit=1", HTTP_HOST="attacker.example")
    assert page.status_code == 200
    following = page.json()["next"]
    assert following.startswith("https://automl.example.com/api/v1/projects/?")
    assert "attacker" not in following
    assert api.as_(tenant_a).get(following).json()["results"][0]["name"] == "one"


def test_the_console_may_not_be_framed(db):
    assert Client().get("/console/signin/")["X-Frame-Options"] == "DENY"


def test_https_redirect_spares_the_health_check(api, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert api.get("/api/v1/health/").status_code in (200, 503)
    redirected = Client().get("/console/signin/", HTTP_HOST="automl.example.com")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://automl.example.com/console/signin/"
