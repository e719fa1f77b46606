"""A tenant keeps at least one owner even when two owners demote or remove each other at once.

PostgreSQL only: there each member command locks the tenant's row before it counts owners, so
the second command sees the first one's result; SQLite serialises every writer anyway. Each
thread has its own client and connection (closed at its end); a barrier makes them collide.
"""


import pytest

from accounts.models import Membership
from tests.concurrent import collide
from tests.conftest import Api, add_member, sign_up

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 6


def request(api: Api, actor, action: str, target_membership: str):
    url = f"/api/v1/members/{target_membership}/"
    client = api.as_(actor)
    if action == "demote":
        return lambda: client.patch(url, {"role": "admin"}, format="json")
    return lambda: client.delete(url)


@pytest.mark.parametrize(("first", "second"), [("demote", "demote"), ("remove", "remove"),
                                               ("demote", "remove")])
def test_two_owners_turning_on_each_other_leave_one_owner(api, postgres_only, first, second):
    losers = []
    for _ in range(ROUNDS):
        one = sign_up(api, tenant="Two owners")
        other = add_member(api, one, "owner")
        members = Membership.objects.for_tenant(one.tenant_id)
        of_one = str(members.get(user_id=one.user_id).id)
        of_other = str(members.get(user_id=other.user_id).id)

        responses = collide([request(api, one, first, of_other),
                             request(api, other, second, of_one)])

        statuses = sorted(r.status_code for r in responses)
        assert len([s for s in statuses if s < 300]) == 1, statuses
        loser = next(r for r in responses if r.status_code >= 300)
        # The loser met the winner's result: inside the command, the target is now the last
        # owner (409); or, authenticated after the winner committed, it was removed (401) or
        # is no longer an owner (403).
        assert loser.status_code in (401, 403, 409), loser.content
        assert set(loser.json()["error"]) == {"code", "message", "fields"}
        if loser.status_code == 409:
            assert loser.json()["error"]["code"] == "last_owner"
        losers.append(loser.status_code)
        assert members.filter(role="owner").count() == 1
    assert 409 in losers, losers  # the requests did meet inside the command
