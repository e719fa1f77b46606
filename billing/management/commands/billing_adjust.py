"""`manage.py billing_adjust --tenant ID --amount N --reason TEXT`: an audited manual entry."""

import getpass
import uuid

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.api import tenant as find_tenant
from billing import wallet
from billing.money import format_amount
from core import context
from core.errors import ApiError


class Command(BaseCommand):
    help = ("Credit (positive amount) or debit (negative) a tenant's wallet in minor units; "
            "recorded in the ledger with the reason and who ran it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant id")
        parser.add_argument("--amount", required=True, type=int, help="minor units, signed")
        parser.add_argument("--reason", required=True, help="why; kept in the ledger")
        parser.add_argument("--actor", default="", help="staff email or id (default: OS user)")
        parser.add_argument("--allow-negative", action="store_true",
                            help="let a debit take the available balance below zero")

    def handle(self, *args: object, **options: object) -> None:
        try:
            tenant = find_tenant(uuid.UUID(str(options["tenant"])))
        except ValueError:
            tenant = None
        if tenant is None:
            raise CommandError(f"No tenant has id {options['tenant']!r}.")
        actor = f"staff:{options['actor'] or _os_user()}"
        try:
            with context.scope(actor=actor):
                updated = wallet.adjust(tenant.id, int(options["amount"]),
                                        str(options["reason"]), actor,
                                        allow_negative=bool(options["allow_negative"]))
        except ApiError as exc:
            raise CommandError(exc.message) from None
        currency = updated.currency
        self.stdout.write(
            f"{tenant.name} ({tenant.id}): {format_amount(int(options['amount']), currency)} "
            f"recorded; balance {format_amount(updated.balance, currency)}, available "
            f"{format_amount(updated.available, currency)}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
