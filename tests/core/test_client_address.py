"""Whose address a request comes from: the peer, unless the peer is a configured proxy.

X-Forwarded-For is written by the client itself unless a proxy of ours appended to it, so the
per-address throttle believes it only from TRUSTED_PROXIES, and uvicorn (`manage.py serve`)
rewrites the client address from the same list and no other.
"""

import pytest
from django.core.cache import cache
from django.core.management import call_command

from core.client_address import client_address, parse_networks
from core.throttling import AnonymousRateThrottle

TOKEN = "/api/v1/auth/token/"
SIGNUP = "/api/v1/auth/signup/"


@pytest.fixture
def three_per_minute(monkeypatch):
    """The anonymous budget down to 3 a minute (tests run with a huge one), on a clean cache."""
    cache.clear()
    monkeypatch.setattr(AnonymousRateThrottle, "THROTTLE_RATES", {"anon": "3/min"})
    yield
    cache.clear()


def guess(api, forwarded_for: str, path: str = TOKEN):
    body = {"email": "nobody@example.com", "password": "guess"}
    if path == SIGNUP:
        body = {"email": "x", "password": "short", "tenant": "t"}
    return api.post(path, body, format="json", HTTP_X_FORWARDED_FOR=forwarded_for)


@pytest.mark.parametrize("path", [TOKEN, SIGNUP])
def test_rotating_x_forwarded_for_does_not_escape_the_per_address_throttle(
        api, db, settings, three_per_minute, path):
    settings.TRUSTED_PROXIES = []
    answers = [guess(api, f"203.0.113.{n}", path).status_code for n in range(5)]
    assert answers[:3] == [401, 401, 401] if path == TOKEN else answers[:3] == [400, 400, 400]
    assert answers[3:] == [429, 429]
    refused = guess(api, "198.51.100.7", path)
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0


def test_a_header_from_a_peer_that_is_not_a_proxy_is_ignored_even_with_proxies_configured(
        api, db, settings, three_per_minute):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]  # the test client's peer is 127.0.0.1
    answers = [guess(api, f"203.0.113.{n}").status_code for n in range(4)]
    assert answers == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(
        api, db, settings, three_per_minute):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    # What the client wrote (left) is ignored; the address our proxy appended (right) counts.
    answers = [guess(api, f"192.0.2.{n}, 203.0.113.5").status_code for n in range(4)]
    assert answers == [401, 401, 401, 429]
    assert guess(api, "203.0.113.6").status_code == 401  # another client behind the proxy


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("198.51.100.1", "203.0.113.9", "198.51.100.1"),               # not a proxy: header ignored
    ("10.0.0.2", "203.0.113.9", "203.0.113.9"),                    # proxy: the client it saw
    ("10.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),           # client-written part ignored
    ("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.3", "203.0.113.9"),  # two proxies in a row
    ("10.0.0.2", "203.0.113.9:4431", "203.0.113.9"),               # with a port
    ("10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
    ("10.0.0.2", "", "10.0.0.2"),                                  # no header: the proxy itself
    ("10.0.0.2", "not-an-address, 10.0.0.3", "10.0.0.3"),          # garbage stops the walk
    ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),                # all proxies: the first one
])
def test_client_address_walks_forwarded_for_from_the_right(peer, forwarded, expected):
    assert client_address(peer, forwarded, parse_networks(["10.0.0.0/8"])) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"


def test_a_trusted_proxy_that_is_not_an_address_is_refused():
    with pytest.raises(ValueError, match=r"proxy\.example"):
        parse_networks(["10.0.0.1", "proxy.example"])


def run_serve(monkeypatch) -> dict:
    seen: dict = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: seen.update(options))
    call_command("serve", "--port", "8123")
    return seen


def test_serve_lets_uvicorn_believe_no_forwarded_header_by_default(settings, monkeypatch):
    settings.TRUSTED_PROXIES = []
    settings.INPROCESS_WORKER = False
    options = run_serve(monkeypatch)
    # uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, i.e. from anyone on the box.
    assert options["proxy_headers"] is False


def test_serve_trusts_forwarded_headers_only_from_the_configured_proxies(settings, monkeypatch):
    settings.TRUSTED_PROXIES = ["10.1.2.3/32", "192.168.0.0/16"]
    settings.INPROCESS_WORKER = False
    options = run_serve(monkeypatch)
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == ["10.1.2.3/32", "192.168.0.0/16"]


async def served_scheme_answer(peer: str, proto: str, proxies: list[str]) -> int:
    """The status of GET /console/signin/ through uvicorn's proxy layer as `serve` sets it up."""
    from asgiref.testing import ApplicationCommunicator
    from django.core.asgi import get_asgi_application
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    # A fresh Django handler: SecurityMiddleware reads SECURE_SSL_REDIRECT when the chain is
    # built, and config.asgi's chain may have been built by an earlier test without it.
    app = ProxyHeadersMiddleware(get_asgi_application(), trusted_hosts=proxies)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/console/signin/", "raw_path": b"/console/signin/",
             "query_string": b"", "root_path": "", "client": (peer, 40000),
             "server": ("10.0.0.1", 8000),
             "headers": [(b"host", b"automl.example.com"), (b"x-forwarded-proto", proto.encode())]}
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return start["status"]


async def test_https_behind_a_trusted_proxy_is_not_redirected_and_a_forged_proto_is(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # The load balancer terminated TLS and says so: served as HTTPS, no redirect loop.
    assert await served_scheme_answer("10.0.0.2", "https", settings.TRUSTED_PROXIES) == 200
    # A client that says so itself is still on plain HTTP: redirected.
    assert await served_scheme_answer("198.51.100.4", "https", settings.TRUSTED_PROXIES) == 301
