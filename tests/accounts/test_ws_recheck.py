"""Checking open sockets' credentials again: one at a time (nudged) and all at once (timer)."""

import uuid

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from accounts.models import ApiToken, Membership, User
from accounts.ws_auth import (
    CLOSE_CREDENTIAL_REVOKED,
    CLOSE_NOT_A_MEMBER,
    SocketCredential,
    current_roles,
    recheck,
)
from tests.conftest import add_member, console_session


def credential_of(account, **overrides) -> SocketCredential:
    token = ApiToken.objects.unscoped().get(tenant_id=account.tenant_id, user_id=account.user_id,
                                            revoked_at__isnull=True)
    fields = {"tenant_id": uuid.UUID(account.tenant_id), "user_id": uuid.UUID(account.user_id),
              "token_id": token.id} | overrides
    return SocketCredential(**fields)


def session_for(account) -> str:
    return console_session(account).session_key


@pytest.mark.django_db
def test_each_way_a_credential_ends_and_its_close_code(api, tenant_a):
    kept = add_member(api, tenant_a, "developer")
    revoked = add_member(api, tenant_a, "finance")
    removed = add_member(api, tenant_a, "viewer")
    deactivated = add_member(api, tenant_a, "viewer")
    expired = add_member(api, tenant_a, "developer")
    signed_out = add_member(api, tenant_a, "developer")
    credentials = {name: credential_of(account) for name, account in [
        ("kept", kept), ("revoked", revoked), ("removed", removed),
        ("deactivated", deactivated), ("expired", expired)]}
    credentials["session"] = credential_of(kept, token_id=None, session_key=session_for(kept))
    credentials["signed_out"] = credential_of(signed_out, token_id=None,
                                              session_key=session_for(signed_out))

    ApiToken.objects.unscoped().filter(pk=credentials["revoked"].token_id).update(
        revoked_at=timezone.now())
    Membership.objects.unscoped().filter(user_id=removed.user_id,
                                         tenant_id=tenant_a.tenant_id).delete()
    User.objects.filter(pk=deactivated.user_id).update(is_active=False)
    ApiToken.objects.unscoped().filter(pk=credentials["expired"].token_id).update(
        expires_at=timezone.now())
    SessionStore(session_key=credentials["signed_out"].session_key).delete()

    codes = {name: recheck(c).close_code for name, c in credentials.items()}
    assert codes == {"kept": 0, "session": 0, "revoked": CLOSE_CREDENTIAL_REVOKED,
                     "removed": CLOSE_NOT_A_MEMBER, "deactivated": CLOSE_CREDENTIAL_REVOKED,
                     "expired": CLOSE_CREDENTIAL_REVOKED, "signed_out": CLOSE_CREDENTIAL_REVOKED}
    assert recheck(credentials["kept"]).access.role == "developer"

    roles = current_roles(set(credentials.values()))
    assert {name: roles[c] for name, c in credentials.items()} == {
        "kept": "developer", "session": "developer", "revoked": None, "removed": None,
        "deactivated": None, "expired": None, "signed_out": None}


@pytest.mark.django_db
def test_the_batched_check_costs_two_queries_however_many_token_sockets(
        api, tenant_a, tenant_b, django_assert_num_queries):
    members = [add_member(api, tenant_a, "developer") for _ in range(3)] + [tenant_a, tenant_b]
    credentials = {credential_of(account) for account in members}
    with django_assert_num_queries(2):
        roles = current_roles(credentials)
    assert sorted(roles.values()) == ["developer"] * 3 + ["owner"] * 2
