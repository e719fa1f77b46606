"""The evaluations' policies start at the log's head: an existing install does not react to old events."""

from django.db import migrations

from eventlog.policies import starting_at_head


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0002_stopped_and_task"),
        ("eventlog", "0002_guards"),
    ]

    operations = [starting_at_head("evaluation.after_training",
                                    "evaluation.stop_short_of_funds")]
