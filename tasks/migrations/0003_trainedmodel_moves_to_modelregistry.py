"""Trained models are the model registry's now: its first migration copied the rows; the old
table goes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0002_policies_start_at_head"),
        ("modelregistry", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(
            name="TrainedModel",
        ),
    ]
