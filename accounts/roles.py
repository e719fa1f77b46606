"""Roles and what each may do, per resource: the one table permissions are checked against."""

OWNER, ADMIN, DEVELOPER, FINANCE, VIEWER = "owner", "admin", "developer", "finance", "viewer"
ROLES = (OWNER, ADMIN, DEVELOPER, FINANCE, VIEWER)

EVERYONE = frozenset(ROLES)
MANAGERS = frozenset({OWNER, ADMIN})
BUILDERS = frozenset({OWNER, ADMIN, DEVELOPER})
MONEY = frozenset({OWNER, ADMIN, FINANCE})

# resource -> action -> roles allowed. Unknown pairs are refused.
RULES: dict[str, dict[str, frozenset[str]]] = {
    "tenant": {"view": EVERYONE},
    "member": {"view": MANAGERS, "create": MANAGERS, "update": frozenset({OWNER}),
               "delete": frozenset({OWNER})},
    "token": {"view": EVERYONE, "create": EVERYONE, "delete": EVERYONE},
    "event": {"view": EVERYONE},
    "project": {"view": EVERYONE, "create": BUILDERS, "update": BUILDERS, "delete": MANAGERS},
    "dataset": {"view": EVERYONE, "create": BUILDERS, "update": BUILDERS, "delete": BUILDERS},
    "task": {"view": EVERYONE, "create": BUILDERS, "update": BUILDERS, "delete": BUILDERS},
    "model": {"view": EVERYONE, "create": BUILDERS},
    "evaluation": {"view": EVERYONE, "create": BUILDERS, "delete": BUILDERS},
    "service": {"view": EVERYONE, "create": BUILDERS, "update": BUILDERS, "delete": BUILDERS},
    "spec": {"view": EVERYONE},
    "wallet": {"view": MONEY, "topup": MONEY, "update": MONEY},
    "usage": {"view": MONEY},
}


def can(role: str, resource: str, action: str) -> bool:
    """Whether `role` may perform `action` on `resource`."""
    return role in RULES.get(resource, {}).get(action, frozenset())


# Members, beyond the table above: a rank, so that nobody grants a role above their own or
# touches a member whose role is above theirs. Owners alone rank highest, so only owners make
# (or unmake) owners. Developer and finance hold different rights at the same height.
RANK: dict[str, int] = {OWNER: 3, ADMIN: 2, DEVELOPER: 1, FINANCE: 1, VIEWER: 0}


def at_least(role: str, other: str) -> bool:
    """Whether `role` ranks as high as `other` or higher (unknown roles reach nothing)."""
    return role in RANK and other in RANK and RANK[role] >= RANK[other]


def may_assign(actor_role: str, current_role: str | None, new_role: str) -> bool:
    """Whether `actor_role` may give `new_role` to a member now holding `current_role` (None: a
    newcomer being added)."""
    if current_role is None:
        return can(actor_role, "member", "create") and at_least(actor_role, new_role)
    return (can(actor_role, "member", "update") and at_least(actor_role, current_role)
            and at_least(actor_role, new_role))


def may_remove(actor_role: str, target_role: str) -> bool:
    """Whether `actor_role` may remove a member holding `target_role`."""
    return can(actor_role, "member", "delete") and at_least(actor_role, target_role)


METHOD_ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "create",
                  "PUT": "update", "PATCH": "update", "DELETE": "delete"}
