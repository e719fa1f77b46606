"""Who may give which role to whom: nobody grants a role above their own or touches a member
whose role is above theirs, and only owners make owners (the hole: an admin added a second
account as owner, which then demoted and removed the original owner).

Tested as a table twice: the rule in the role table, and every actor x target x new role
through the public API. The expectations are written out here, not computed by the rule."""

import itertools

import pytest

from accounts.models import Membership
from accounts.roles import ROLES, may_assign, may_remove
from tests.conftest import add_member, sign_up

MANAGERS = {"owner", "admin"}


def expected_add(actor: str, new: str) -> bool:
    """Owners add anyone; admins add anyone but owners; the others add no one."""
    return actor == "owner" or (actor == "admin" and new != "owner")


def expected_change(actor: str, target: str, new: str) -> bool:
    """Only owners change roles (admins may add members, not change them)."""
    return actor == "owner"


def expected_remove(actor: str, target: str) -> bool:
    """Only owners remove members."""
    return actor == "owner"


# --- the rule in the role table ----------------------------------------------------------------

RANKED_TABLE = [
    # actor,      target's role (None: a newcomer), new role, allowed
    ("owner", None, "owner", True),
    ("owner", "admin", "owner", True),
    ("owner", "owner", "viewer", True),
    ("admin", None, "admin", True),
    ("admin", None, "viewer", True),
    ("admin", None, "owner", False),          # the hole: only owners make owners
    ("admin", "owner", "viewer", False),      # a member above the admin
    ("admin", "developer", "owner", False),
    ("developer", None, "viewer", False),     # not a manager at all
    ("finance", "viewer", "viewer", False),
    ("viewer", "viewer", "viewer", False),
]


@pytest.mark.parametrize(("actor", "target", "new", "allowed"), RANKED_TABLE,
                         ids=[f"{a}-{t}-to-{n}" for a, t, n, _ in RANKED_TABLE])
def test_may_assign_reads_like_the_rule(actor, target, new, allowed):
    assert may_assign(actor, target, new) is allowed


@pytest.mark.parametrize(("actor", "new"), list(itertools.product(ROLES, ROLES)))
def test_may_assign_a_newcomer_over_every_pair(actor, new):
    assert may_assign(actor, None, new) is expected_add(actor, new)


@pytest.mark.parametrize(("actor", "target", "new"), list(itertools.product(ROLES, ROLES, ROLES)))
def test_may_assign_a_member_over_every_triple(actor, target, new):
    assert may_assign(actor, target, new) is expected_change(actor, target, new)


@pytest.mark.parametrize(("actor", "target"), list(itertools.product(ROLES, ROLES)))
def test_may_remove_over_every_pair(actor, target):
    assert may_remove(actor, target) is expected_remove(actor, target)


def test_unknown_roles_are_refused():
    assert may_assign("owner", None, "emperor") is False
    assert may_assign("emperor", None, "viewer") is False
    assert may_assign("owner", "emperor", "viewer") is False
    assert may_remove("emperor", "viewer") is False


# --- the same table through the API ------------------------------------------------------------


def membership_id(account) -> str:
    return str(Membership.objects.for_tenant(account.tenant_id).get(user_id=account.user_id).id)


def role_of(account) -> str | None:
    row = Membership.objects.for_tenant(account.tenant_id).filter(user_id=account.user_id).first()
    return row.role if row else None


def assert_refused(response) -> None:
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert set(response.json()["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(("actor", "new"), list(itertools.product(ROLES, ROLES)))
def test_adding_a_member_through_the_api(api, tenant_a, actor, new):
    caller = add_member(api, tenant_a, actor)
    newcomer = sign_up(api, tenant="Newcomer's own")

    response = api.as_(caller).post("/api/v1/members/", {"email": newcomer.email, "role": new},
                                    format="json")

    newcomer_here = Membership.objects.for_tenant(tenant_a.tenant_id).filter(
        user_id=newcomer.user_id)
    if expected_add(actor, new):
        assert response.status_code == 201, response.content
        assert newcomer_here.get().role == new
    else:
        assert_refused(response)
        assert not newcomer_here.exists()


@pytest.mark.parametrize(("actor", "target", "new"), list(itertools.product(ROLES, ROLES, ROLES)))
def test_changing_a_role_through_the_api(api, tenant_a, actor, target, new):
    caller, member = add_member(api, tenant_a, actor), add_member(api, tenant_a, target)

    response = api.as_(caller).patch(f"/api/v1/members/{membership_id(member)}/", {"role": new},
                                     format="json")

    if expected_change(actor, target, new):
        assert response.status_code == 200, response.content
        assert role_of(member) == new
    else:
        assert_refused(response)
        assert role_of(member) == target
    assert role_of(tenant_a) == "owner"


@pytest.mark.parametrize(("actor", "target"), list(itertools.product(ROLES, ROLES)))
def test_removing_a_member_through_the_api(api, tenant_a, actor, target):
    caller, member = add_member(api, tenant_a, actor), add_member(api, tenant_a, target)

    response = api.as_(caller).delete(f"/api/v1/members/{membership_id(member)}/")

    if expected_remove(actor, target):
        assert response.status_code == 204, response.content
        assert role_of(member) is None
    else:
        assert_refused(response)
        assert role_of(member) == target


# --- the takeover, and changing oneself ---------------------------------------------------------


def test_an_admin_cannot_take_the_tenant_from_its_owner(api, tenant_a):
    admin = add_member(api, tenant_a, "admin")
    accomplice = sign_up(api, tenant="Accomplice's own")

    made_owner = api.as_(admin).post("/api/v1/members/", {"email": accomplice.email,
                                     "role": "owner"}, format="json")

    assert_refused(made_owner)
    assert made_owner.json()["error"]["fields"] == {"role": [
        "Only an owner may make someone an owner."]}
    owners = Membership.objects.for_tenant(tenant_a.tenant_id).filter(role="owner")
    assert [str(m.user_id) for m in owners] == [tenant_a.user_id]


@pytest.mark.parametrize("role", sorted(set(ROLES) - {"owner"}))
def test_nobody_raises_their_own_role(api, tenant_a, role):
    member = add_member(api, tenant_a, role)
    url = f"/api/v1/members/{membership_id(member)}/"

    for higher in ("owner", "admin"):
        response = api.as_(member).patch(url, {"role": higher}, format="json")
        assert_refused(response)
    assert role_of(member) == role


def test_an_owner_may_step_down_or_leave_while_another_owner_stays(api, tenant_a):
    second = add_member(api, tenant_a, "owner")

    stepped_down = api.as_(second).patch(f"/api/v1/members/{membership_id(second)}/",
                                         {"role": "developer"}, format="json")
    assert stepped_down.status_code == 200
    again = add_member(api, tenant_a, "owner")
    left = api.as_(again).delete(f"/api/v1/members/{membership_id(again)}/")

    assert left.status_code == 204
    assert role_of(second) == "developer"
    assert role_of(again) is None


def test_the_last_owner_cannot_remove_or_demote_themselves(api, tenant_a):
    url = f"/api/v1/members/{membership_id(tenant_a)}/"

    for response in (api.as_(tenant_a).delete(url),
                     api.as_(tenant_a).patch(url, {"role": "viewer"}, format="json")):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "last_owner"
    assert role_of(tenant_a) == "owner"
