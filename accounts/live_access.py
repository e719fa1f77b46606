"""Changes of who may read a tenant's events reach its open websockets at once.

A membership saved (its role changed) or deleted, a user saved (deactivated, password changed)
or signed out of the console tells the user's sockets, in every web process, to check their
credential again (`eventlog.realtime.notify_access_changed`, after commit). Token revocation
does the same in `accounts.commands.revoke_token` (a queryset update sends no signal). Sockets
also check on a timer, so a lost message only delays the close.
"""

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Membership, User
from eventlog import realtime


def _announce(tenant_id: object, user_id: object) -> None:
    transaction.on_commit(partial(realtime.notify_access_changed, tenant_id, user_id))


@receiver(post_save, sender=Membership, dispatch_uid="live_access.membership_saved")
@receiver(post_delete, sender=Membership, dispatch_uid="live_access.membership_deleted")
def membership_changed(sender: type, instance: Membership, **kwargs: object) -> None:
    """A role changed or a member left: their sockets in that tenant check again."""
    if kwargs.get("created"):
        return  # a new member has no socket in this tenant yet
    _announce(instance.tenant_id, instance.user_id)


@receiver(post_save, sender=User, dispatch_uid="live_access.user_saved")
def user_changed(sender: type, instance: User, **kwargs: object) -> None:
    """A user deactivated or given a new password: their sockets in every tenant check again."""
    update_fields = kwargs.get("update_fields")
    if kwargs.get("created") or (update_fields and set(update_fields) == {"last_login"}):
        return  # signing in changes nobody's access
    _announce_everywhere(instance.pk)


def signed_out(user_id: object) -> None:
    """A session ended (call it after logout flushed it): the user's sockets check now."""
    _announce_everywhere(user_id)


def _announce_everywhere(user_id: object) -> None:
    for tenant_id in Membership.objects.unscoped().filter(user_id=user_id).values_list(
            "tenant_id", flat=True):
        _announce(tenant_id, user_id)
