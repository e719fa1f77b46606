"""The trained-model read model moves here from `tasks`: the table is created and filled from
the rows `tasks` had (their lineage from the task's row; the split from the defaults that
training used before its events said which, as the events' upcasters do), and the projection's
checkpoint starts where the log is. tasks' 0003 then drops the old table."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Max

FORMER_VALIDATION_FRACTION = 0.2  # frozen here: a migration never follows the code
FORMER_SPLIT_SEED = 0


def copy_rows(apps, schema_editor):
    old = apps.get_model("tasks", "TrainedModel")
    task = apps.get_model("tasks", "Task")
    new = apps.get_model("modelregistry", "TrainedModel")
    rows = list(old.objects.all())
    datasets = {t["id"]: t for t in task.objects.filter(id__in=[r.task_id for r in rows]).values(
        "id", "train_dataset_id", "test_dataset_id")}
    new.objects.bulk_create(
        [new(id=r.id, tenant_id=r.tenant_id, project_id=r.project_id, task_id=r.task_id,
             version=r.version, scenario=r.scenario, model_name=r.model_name, labels=r.labels,
             metrics=r.metrics, artifact_key=r.artifact_key, input_size=r.input_size,
             train_dataset_id=datasets[r.task_id]["train_dataset_id"],
             test_dataset_id=datasets[r.task_id]["test_dataset_id"],
             validation_fraction=FORMER_VALIDATION_FRACTION, split_seed=FORMER_SPLIT_SEED,
             created_at=r.created_at)
         for r in rows if r.task_id in datasets],
        batch_size=500)
    event = apps.get_model("eventlog", "Event")
    checkpoint = apps.get_model("eventlog", "ProjectionCheckpoint")
    head = event.objects.aggregate(last=Max("position"))["last"] or 0
    checkpoint.objects.update_or_create(name="modelregistry.models",
                                        defaults={"position": head})


def copy_back(apps, schema_editor):
    old = apps.get_model("tasks", "TrainedModel")
    new = apps.get_model("modelregistry", "TrainedModel")
    old.objects.bulk_create(
        [old(id=r.id, tenant_id=r.tenant_id, project_id=r.project_id, task_id=r.task_id,
             version=r.version, scenario=r.scenario, model_name=r.model_name, labels=r.labels,
             metrics=r.metrics, artifact_key=r.artifact_key, input_size=r.input_size,
             created_at=r.created_at)
         for r in new.objects.all()],
        batch_size=500)
    apps.get_model("eventlog", "ProjectionCheckpoint").objects.filter(
        name="modelregistry.models").delete()


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("accounts", "0002_websocket_ticket_credential"),
        ("eventlog", "0002_guards"),
        ("tasks", "0002_policies_start_at_head"),
    ]

    operations = [
        migrations.CreateModel(
            name="TrainedModel",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("project_id", models.UUIDField()),
                ("task_id", models.UUIDField()),
                ("version", models.PositiveIntegerField()),
                ("scenario", models.CharField(max_length=16)),
                ("model_name", models.CharField(max_length=64)),
                ("labels", models.JSONField(default=list)),
                ("metrics", models.JSONField(default=dict)),
                ("artifact_key", models.CharField(max_length=300)),
                ("input_size", models.JSONField(default=list)),
                ("train_dataset_id", models.UUIDField()),
                ("test_dataset_id", models.UUIDField(null=True)),
                ("validation_fraction", models.FloatField(default=0.2)),
                ("split_seed", models.BigIntegerField(default=0)),
                ("created_at", models.DateTimeField()),
                ("tenant", models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, to="accounts.tenant")),
            ],
            options={
                "indexes": [models.Index(fields=["tenant", "created_at"], name="model_tenant_created")],
            },
        ),
        migrations.RunPython(copy_rows, copy_back),
    ]
