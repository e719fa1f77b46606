import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("position", models.BigAutoField(primary_key=True, serialize=False)),
                ("tenant_id", models.UUIDField()),
                ("stream_type", models.CharField(max_length=64)),
                ("stream_id", models.CharField(max_length=64)),
                ("version", models.PositiveIntegerField()),
                ("type", models.CharField(max_length=100)),
                ("schema_version", models.PositiveSmallIntegerField(default=1)),
                ("data", models.JSONField(default=dict)),
                ("metadata", models.JSONField(default=dict)),
                ("recorded_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("stream_id", "version"),
                                                        name="eventlog_stream_version")],
                "indexes": [
                    models.Index(fields=["tenant_id", "position"], name="eventlog_tenant_position"),
                    models.Index(fields=["stream_type", "position"], name="eventlog_type_position"),
                ],
            },
        ),
        migrations.CreateModel(
            name="ProjectionCheckpoint",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("position", models.BigIntegerField(default=0)),
            ],
        ),
    ]
