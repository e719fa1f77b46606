"""The tasks' policies start at the log's head: an existing install does not react to old events."""

from django.db import migrations

from eventlog.policies import starting_at_head


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0001_initial"),
        ("eventlog", "0002_guards"),
    ]

    operations = [starting_at_head("tasks.stop_short_of_funds")]
