"""`flush` wipes the whole database, the event log included: the guards step aside for it.

Django's test runner flushes between transactional tests; an operator running `flush` has
already confirmed erasing everything. No other path can remove events.
"""

from django.core.management.commands import flush
from django.db import connections, transaction

from eventlog import guards


class Command(flush.Command):
    def handle(self, **options: object) -> None:
        connection = connections[options["database"]]
        with transaction.atomic(using=connection.alias):
            guards.drop_guards(connection)
            try:
                super().handle(**options)
            finally:
                guards.install(connection)
