"""State changes of accounts: signup, tokens, tickets, members and projects."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import signin_limit
from accounts.aggregates import ProjectAggregate
from accounts.events import (
    ProjectArchived,
    ProjectCreated,
    ProjectDescriptionChanged,
    ProjectRenamed,
)
from accounts.models import ApiToken, Membership, Project, Tenant, User, WebsocketTicket
from accounts.roles import OWNER, at_least, can, may_assign, may_remove
from accounts.tokens import TICKET_PREFIX, TOKEN_PREFIX, digest, new_secret
from core import context
from core.errors import (
    InvalidCredentials,
    LastOwner,
    NotFound,
    PermissionDenied,
    ProjectIsArchived,
    ValidationFailed,
    VersionConflict,
)
from core.tenancy import TenantAccess
from eventlog import realtime
from eventlog.aggregates import CONFLICT_ATTEMPTS, retry_on_conflict


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def issue_token(user: User, tenant_id: uuid.UUID, name: str = "default") -> IssuedToken:
    """Create an API token for a user in a tenant; its secret is returned only now."""
    secret = new_secret(TOKEN_PREFIX)
    token = ApiToken.objects.create(tenant_id=tenant_id, user=user, name=name,
                                    prefix=secret[: len(TOKEN_PREFIX) + 6], digest=digest(secret))
    return IssuedToken(token, secret)


def revoke_token(access: TenantAccess, token_id: object) -> None:
    """Revoke one of the caller's tokens in this tenant (another's is not found)."""
    updated = (ApiToken.objects.for_tenant(access.tenant_id)
               .filter(pk=token_id, user_id=access.user_id, revoked_at__isnull=True)
               .update(revoked_at=timezone.now()))
    if not updated:
        raise NotFound("Token not found.")
    # Its open websockets, in every web process, check their credential now.
    transaction.on_commit(partial(realtime.notify_access_changed, access.tenant_id,
                                  access.user_id))


@transaction.atomic
def sign_up(email: str, password: str, tenant_name: str) -> tuple[User, Tenant, IssuedToken]:
    """A new user owning a new tenant, with a first token."""
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed("This email is already registered; sign in instead.",
                               fields={"email": ["This email is already registered."]})
    user = User.objects.create_user(email=email, password=password)
    tenant = Tenant.objects.create(name=tenant_name)
    Membership.objects.create(tenant=tenant, user=user, role=OWNER)
    return user, tenant, issue_token(user, tenant.id, name="signup")


def sign_in(email: str, password: str, tenant_id: uuid.UUID | None) -> IssuedToken:
    """A new token for valid credentials, in the given tenant or the user's first one."""
    user = signin_limit.verify(email, password)  # 401, or 429 while the email is locked
    memberships = Membership.objects.unscoped().filter(user=user).order_by("created_at")
    if tenant_id is not None:
        memberships = memberships.filter(tenant_id=tenant_id)
    membership = memberships.first()
    if membership is None:
        raise InvalidCredentials("Email or password is wrong, or you are not in that tenant.")
    return issue_token(user, membership.tenant_id, name="sign-in")


def issue_websocket_ticket(access: TenantAccess, session_key: str = "") -> tuple[str,
                                                                                WebsocketTicket]:
    """A single-use ticket that opens one websocket within WS_TICKET_TTL_S seconds.

    It remembers the token (or session) that asked for it: the socket it opens lives no longer
    than that credential.
    """
    secret = new_secret(TICKET_PREFIX)
    ticket = WebsocketTicket.objects.create(
        digest=digest(secret), tenant_id=access.tenant_id, user_id=access.user_id,
        token_id=access.token_id, session_key="" if access.token_id else session_key or "",
        expires_at=timezone.now() + timedelta(seconds=settings.WS_TICKET_TTL_S),
    )
    return secret, ticket


def redeem_websocket_ticket(secret: str) -> tuple[TenantAccess, str] | None:
    """Use a ticket once: the access it grants and the session key that issued it ("" for a
    token); None when unknown, used or expired."""
    now = timezone.now()
    key = digest(secret)
    used = WebsocketTicket.objects.filter(digest=key, used_at__isnull=True,
                                          expires_at__gt=now).update(used_at=now)
    if not used:
        return None
    ticket = WebsocketTicket.objects.get(digest=key)
    membership = (Membership.objects.for_tenant(ticket.tenant_id)
                  .filter(user_id=ticket.user_id).first())
    if membership is None:
        return None
    return TenantAccess(tenant_id=ticket.tenant_id, user_id=ticket.user_id, role=membership.role,
                        token_id=ticket.token_id), ticket.session_key


def _lock_members(access: TenantAccess) -> str:
    """Lock the tenant's membership set for this transaction; the caller's role as it is now
    ("" when the caller was removed meanwhile: a role the table allows nothing).

    Every member command takes the tenant row's lock first, so two of them never both count
    the same owners (two owners demoting each other at once would otherwise leave none), and
    the caller's role is read after the lock, not from when the request was authenticated.
    """
    # FOR NO KEY UPDATE: member commands queue behind each other, while rows that merely
    # reference the tenant (tokens, events, wallets) can still be inserted meanwhile.
    Tenant.objects.select_for_update(no_key=True).filter(pk=access.tenant_id).values_list(
        "pk").get()
    own = Membership.objects.for_tenant(access.tenant_id).filter(user_id=access.user_id).first()
    return own.role if own else ""


def _not_a_member(actor_role: str) -> None:
    if not actor_role:
        raise PermissionDenied("You are no longer a member of this tenant.")


def _refuse_grant(actor_role: str, current_role: str | None, new_role: str) -> None:
    """PermissionDenied saying which rule of may_assign refused."""
    _not_a_member(actor_role)
    if not can(actor_role, "member", "create" if current_role is None else "update"):
        raise PermissionDenied()
    if current_role is not None and not at_least(actor_role, current_role):
        raise PermissionDenied(f"This member is {current_role}, above your role "
                               f"({actor_role}); ask an owner.")
    why = ("Only an owner may make someone an owner." if new_role == OWNER
           else f"Your role ({actor_role}) may not grant {new_role}.")
    raise PermissionDenied(why, fields={"role": [why]})


def _refuse_removal(actor_role: str, target_role: str) -> None:
    """PermissionDenied saying which rule of may_remove refused."""
    _not_a_member(actor_role)
    if not can(actor_role, "member", "delete"):
        raise PermissionDenied()
    raise PermissionDenied(f"This member is {target_role}, above your role ({actor_role}); "
                           "ask an owner.")


def add_member(access: TenantAccess, email: str, role: str) -> Membership:
    """Give an existing user a role in the caller's tenant, no higher than the caller's own."""
    with transaction.atomic():
        actor_role = _lock_members(access)
        if not may_assign(actor_role, None, role):
            _refuse_grant(actor_role, None, role)
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise ValidationFailed("No user has this email; ask them to sign up first.",
                                   fields={"email": ["No user has this email."]})
        if Membership.objects.for_tenant(access.tenant_id).filter(user=user).exists():
            raise ValidationFailed("This user is already a member.",
                                   fields={"email": ["Already a member of this tenant."]})
        return Membership.objects.create(tenant_id=access.tenant_id, user=user, role=role)


def _last_owner(members: QuerySet, membership: Membership) -> bool:
    return membership.role == OWNER and members.filter(role=OWNER).count() == 1


def change_member_role(access: TenantAccess, membership_id: object, role: str) -> Membership:
    """Change a member's role within the caller's rank; the last owner cannot be demoted."""
    with transaction.atomic():
        actor_role = _lock_members(access)
        members = Membership.objects.for_tenant(access.tenant_id)
        membership = members.filter(pk=membership_id).first()
        if membership is None:
            raise NotFound("Member not found.")
        # The tenant's state first: a request that lost a race to another owner learns why.
        if role != OWNER and _last_owner(members, membership):
            raise LastOwner()
        if not may_assign(actor_role, membership.role, role):
            _refuse_grant(actor_role, membership.role, role)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def remove_member(access: TenantAccess, membership_id: object) -> None:
    """Remove a member and revoke their tokens in this tenant; the last owner stays."""
    with transaction.atomic():
        actor_role = _lock_members(access)
        members = Membership.objects.for_tenant(access.tenant_id)
        membership = members.filter(pk=membership_id).first()
        if membership is None:
            raise NotFound("Member not found.")
        if _last_owner(members, membership):
            raise LastOwner("A tenant keeps at least one owner; make someone else owner before "
                            "removing this one.")
        if not may_remove(actor_role, membership.role):
            _refuse_removal(actor_role, membership.role)
        ApiToken.objects.for_tenant(access.tenant_id).filter(user_id=membership.user_id).update(
            revoked_at=timezone.now())
        membership.delete()


def _require_unique_name(tenant_id: uuid.UUID, name: str, exclude: object = None) -> None:
    clash = Project.objects.for_tenant(tenant_id).filter(name=name, archived_at__isnull=True)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationFailed("A project with this name exists; pick another name.",
                               fields={"name": ["A project with this name already exists."]})


@transaction.atomic
def create_project(access: TenantAccess, name: str, description: str = "") -> Project:
    """Create a project in the caller's tenant."""
    _require_unique_name(access.tenant_id, name)
    project = ProjectAggregate(access.tenant_id, uuid.uuid4())
    with context.scope(actor=access.actor):
        project.append(ProjectCreated(name=name, description=description,
                                      created_by=str(access.user_id)))
    return Project.objects.for_tenant(access.tenant_id).get(pk=project.stream.id)


def update_project(access: TenantAccess, project_id: object, *, name: str | None = None,
                   description: str | None = None,
                   expected_version: int | None = None) -> Project:
    """Rename a project or change its description; archived projects are read-only.

    With `expected_version` (the client's If-Match) the change applies to that version only,
    else 409 version_conflict. Without it the client asked for these fields whatever else
    changed, so a concurrent writer's append sends the command again from the new head.
    """

    def at_head() -> None:
        project = ProjectAggregate.load(access.tenant_id, project_id)
        if expected_version is not None and project.version != expected_version:
            raise VersionConflict(f"The project is at version {project.version}, not "
                                  f"{expected_version}; reload it and try again.")
        project.require(not project.archived, "The project is archived; it can no longer change.",
                        ProjectIsArchived)
        changes: list[object] = []
        if name is not None and name != project.name:
            _require_unique_name(access.tenant_id, name, exclude=project_id)
            changes.append(ProjectRenamed(name=name))
        if description is not None and description != project.description:
            changes.append(ProjectDescriptionChanged(description=description))
        with context.scope(actor=access.actor):
            project.append(*changes)

    retry_on_conflict(at_head, attempts=1 if expected_version is not None else CONFLICT_ATTEMPTS)
    return Project.objects.for_tenant(access.tenant_id).get(pk=project_id)


@transaction.atomic
def archive_project(access: TenantAccess, project_id: object) -> None:
    """Archive a project: it stays readable, its name becomes free, nothing new goes in it."""
    project = ProjectAggregate.load(access.tenant_id, project_id)
    project.require(not project.archived, "The project is already archived.", ProjectIsArchived)
    with context.scope(actor=access.actor):
        project.append(ProjectArchived())
