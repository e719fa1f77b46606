"""The console signs in behind compose's TLS proxy, with production's secure cookies.

Caddy terminates TLS and web sees https through X-Forwarded-Proto from TRUSTED_PROXIES (uvicorn's
proxy layer, tests/core/test_client_address.py); here the request arrives as uvicorn hands it on
(secure), on PUBLIC_URL's host, with the browser's Origin, and CSRF checks enforced.
"""

import re

import pytest
from django.test import Client

PUBLIC = "https://localhost"
BEHIND_CADDY = {"SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
                "SECURE_SSL_REDIRECT": True, "ALLOWED_HOSTS": ["localhost"],
                "CSRF_TRUSTED_ORIGINS": [PUBLIC]}  # production's default: PUBLIC_URL's origin


@pytest.fixture
def behind_caddy(settings):
    for name, value in BEHIND_CADDY.items():
        setattr(settings, name, value)


def sign_in(account, **request) -> tuple[Client, object]:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/console/signin/", HTTP_HOST="localhost", **request)
    assert page.status_code == 200, page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    response = client.post("/console/signin/", {
        "email": account.email, "password": account.password, "csrfmiddlewaretoken": token[1],
        "next": "/console/"}, HTTP_HOST="localhost", HTTP_ORIGIN=PUBLIC,
        HTTP_REFERER=f"{PUBLIC}/console/signin/", **request)
    return client, response


def test_sign_in_over_https_sets_secure_cookies(tenant_a, behind_caddy):
    client, response = sign_in(tenant_a, secure=True)
    assert response.status_code == 302, response.content[:500]
    assert response.cookies["sessionid"]["secure"]
    assert client.cookies["csrftoken"]["secure"]
    assert client.get("/api/v1/me/", HTTP_HOST="localhost", secure=True).status_code == 200


def test_plain_http_is_sent_to_https_before_any_form(tenant_a, behind_caddy):
    page = Client().get("/console/signin/", HTTP_HOST="localhost")
    assert page.status_code == 301 and page["Location"] == f"{PUBLIC}/console/signin/"
