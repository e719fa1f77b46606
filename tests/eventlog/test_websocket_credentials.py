"""A websocket lives no longer than its credential (issue 16, item 5): revoking the token,
removing the member or ending the session closes it, with a documented code, in every web
process; a role change re-applies the role's filter to what follows."""

import asyncio
import json
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.ws_auth import CLOSE_CREDENTIAL_REVOKED, CLOSE_NOT_A_MEMBER
from config.asgi import application
from eventlog import realtime
from tests.conftest import add_member, console_session
from tests.console.test_views import signed_in
from tests.eventlog.money_world import write_money_events
from tests.eventlog.test_websocket import positions, receive_messages, write

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(account) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/v1/events/",
                                 headers=[(b"authorization", f"Bearer {account.token}".encode())])


async def live(comm: WebsocketCommunicator, account) -> None:
    """The socket is open and streams: an event written now arrives."""
    assert (await comm.connect())[0]
    written = await write(account.tenant_id, 1)
    assert positions(await receive_messages(comm, 1)) == [written[0].position]


async def closed_with(comm: WebsocketCommunicator, timeout: float = 10) -> int:
    """The close code the server sent, skipping any event still in flight before it."""
    async with asyncio.timeout(timeout):
        while True:
            message = await comm.receive_output(timeout=timeout)
            if message["type"] == "websocket.close":
                return message.get("code")


async def nothing_more_after_writing(comm: WebsocketCommunicator, account) -> bool:
    await write(account.tenant_id, 2)
    return await comm.receive_nothing(timeout=0.5)


def token_id_of(api, account) -> str:
    tokens = api.as_(account).get("/api/v1/tokens/").json()["results"]
    [token] = [t for t in tokens if account.token.startswith(t["prefix"]) and not t["revoked_at"]]
    return token["id"]


def revoke(api, account, token_id: str | None = None) -> None:
    token_id = token_id or token_id_of(api, account)
    response = api.as_(account).delete(f"/api/v1/tokens/{token_id}/")
    assert response.status_code == 204, response.content


def membership_of(api, owner, member) -> str:
    members = api.as_(owner).get("/api/v1/members/").json()["results"]
    return next(m["id"] for m in members if m["email"] == member.email)


async def test_revoking_the_token_closes_its_socket(api, tenant_a):
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    comm = bearer(developer)
    await live(comm, developer)

    await sync_to_async(revoke)(api, developer)

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED
    assert await nothing_more_after_writing(comm, developer)


async def test_another_token_of_the_same_user_keeps_its_socket(api, tenant_a):
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    second = await sync_to_async(api.as_(developer).post)("/api/v1/tokens/", {"name": "ci"},
                                                          format="json")
    comm = bearer(developer)
    await live(comm, developer)

    await sync_to_async(revoke)(api, developer, second.json()["id"])

    written = await write(developer.tenant_id, 1)
    assert positions(await receive_messages(comm, 1)) == [written[0].position]
    await comm.disconnect()


async def test_removing_the_member_closes_their_socket(api, tenant_a):
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    comm = bearer(developer)
    await live(comm, developer)
    owner_comm = bearer(tenant_a)
    await live(owner_comm, tenant_a)

    member_id = await sync_to_async(membership_of)(api, tenant_a, developer)
    response = await sync_to_async(api.as_(tenant_a).delete)(f"/api/v1/members/{member_id}/")
    assert response.status_code == 204

    assert await closed_with(comm) == CLOSE_NOT_A_MEMBER
    assert await nothing_more_after_writing(comm, developer)
    # The owner's socket is untouched.
    assert len(await receive_messages(owner_comm, 2)) == 2
    await owner_comm.disconnect()


async def test_a_ticket_socket_closes_when_the_token_that_asked_for_it_is_revoked(api, tenant_a):
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    response = await sync_to_async(api.as_(developer).post)("/api/v1/ws-tickets/")
    assert response.status_code == 201
    comm = WebsocketCommunicator(application,
                                 f"/ws/v1/events/?ticket={response.json()['ticket']}")
    await live(comm, developer)

    await sync_to_async(revoke)(api, developer)

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED
    assert await nothing_more_after_writing(comm, developer)


async def test_a_ticket_from_a_token_revoked_before_use_opens_nothing(api, tenant_a):
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    response = await sync_to_async(api.as_(developer).post)("/api/v1/ws-tickets/")
    await sync_to_async(revoke)(api, developer)
    comm = WebsocketCommunicator(application,
                                 f"/ws/v1/events/?ticket={response.json()['ticket']}")
    assert not (await comm.connect())[0]


async def test_the_periodic_check_alone_closes_it_when_the_nudge_is_lost(
        api, tenant_a, settings, monkeypatch):
    """As when the revocation happened in another process and its message never arrived."""
    settings.WS_AUTH_RECHECK_S = 0.2
    monkeypatch.setattr(realtime, "notify_access_changed", lambda tenant_id, user_id: None)
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    comm = bearer(developer)
    await live(comm, developer)

    await sync_to_async(revoke)(api, developer)

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED


async def test_the_nudge_crosses_processes_through_redis(api, tenant_a, settings, redis_url,
                                                         monkeypatch):
    """Only the Redis message can close it: no local nudge, and the timer is far away."""
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_url]}}}
    settings.WS_AUTH_RECHECK_S = 600
    monkeypatch.setattr(realtime.hubs, "access_changed", lambda tenant_id, user_id: None)
    developer = await sync_to_async(add_member)(api, tenant_a, "developer")
    comm = bearer(developer)
    await live(comm, developer)

    await sync_to_async(revoke)(api, developer)

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED


async def test_signing_out_closes_a_session_socket(tenant_a, settings):
    settings.WS_AUTH_RECHECK_S = 0.2  # signing out sends no nudge: the timer finds it

    session = await sync_to_async(console_session)(tenant_a)
    comm = WebsocketCommunicator(application, "/ws/v1/events/", headers=[
        (b"cookie", f"sessionid={session.session_key}".encode()),
        (b"host", b"console.example.com"), (b"origin", b"https://console.example.com")])
    await live(comm, tenant_a)

    await sync_to_async(session.flush)()  # what logout() does

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED


async def test_signing_out_of_the_console_closes_its_sockets_at_once(api, tenant_a, settings):
    settings.WS_AUTH_RECHECK_S = 600  # only the sign-out's nudge can close it
    client = await sync_to_async(signed_in)(tenant_a)
    comm = WebsocketCommunicator(application, "/ws/v1/events/", headers=[
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        (b"host", b"console.example.com"), (b"origin", b"https://console.example.com")])
    await live(comm, tenant_a)

    assert (await sync_to_async(client.post)("/console/signout/")).status_code == 302

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED


async def test_a_ticket_the_console_asked_for_closes_when_its_session_signs_out(
        api, tenant_a, settings):
    settings.WS_AUTH_RECHECK_S = 600  # only the sign-out's nudge can close it
    client = await sync_to_async(signed_in)(tenant_a)
    response = await sync_to_async(client.post)("/api/v1/ws-tickets/")
    assert response.status_code == 201, response.content
    comm = WebsocketCommunicator(application,
                                 f"/ws/v1/events/?ticket={response.json()['ticket']}")
    await live(comm, tenant_a)

    assert (await sync_to_async(client.post)("/console/signout/")).status_code == 302

    assert await closed_with(comm) == CLOSE_CREDENTIAL_REVOKED


async def test_a_demoted_member_stops_receiving_money_events_at_once(api, tenant_a, settings):
    settings.WS_AUTH_RECHECK_S = 600  # only the nudge of the role change can apply it
    finance = await sync_to_async(add_member)(api, tenant_a, "finance")
    comm = bearer(finance)
    await live(comm, finance)
    await sync_to_async(write_money_events)(tenant_a.tenant_id)
    before = await receive_until_widget(comm, finance)
    assert any(e["stream_type"] == "wallet" for e in before)

    member_id = await sync_to_async(membership_of)(api, tenant_a, finance)
    response = await sync_to_async(api.as_(tenant_a).patch)(
        f"/api/v1/members/{member_id}/", {"role": "viewer"}, format="json")
    assert response.status_code == 200, response.content
    await sync_to_async(write_money_events)(tenant_a.tenant_id)
    after = await receive_until_widget(comm, finance)
    assert after and not any(e["stream_type"] == "wallet" for e in after)
    await comm.disconnect()


async def receive_until_widget(comm: WebsocketCommunicator, account) -> list:
    """Every event delivered up to a marker event written now (so none may be pending)."""
    [marker] = await write(account.tenant_id, 1, stream=None)
    events = []
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await comm.receive_from(timeout=10))
            if message["type"] == "event":
                events.append(message["event"])
                if message["event"]["position"] == marker.position:
                    return events


def test_close_codes_are_documented():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in (CLOSE_CREDENTIAL_REVOKED, CLOSE_NOT_A_MEMBER, 4000):
        assert f"`{code}`" in readme, code

