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
    "model": {"view": EVERYONE},
    "evaluation": {"view": EVERYONE, "create": BUILDERS, "delete": BUILDERS},
    "service": {"view": EVERYONE, "create": BUILDERS, "update": BUILDERS, "delete": BUILDERS},
    "spec": {"view": EVERYONE},
    "wallet": {"view": MONEY, "topup": MONEY, "update": MONEY},
    "usage": {"view": MONEY},
}


def can(role: str, resource: str, action: str) -> bool:
    """Whether `role` may perform `action` on `resource`."""
    return role in RULES.get(resource, {}).get(action, frozenset())


METHOD_ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "create",
                  "PUT": "update", "PATCH": "update", "DELETE": "delete"}
