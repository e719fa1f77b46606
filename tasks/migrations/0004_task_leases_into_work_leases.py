"""The task leases join every other worker lease in one table (core.WorkLease, core.lifecycle):
each `TaskLease` row becomes the lease `task:<id>`, held by its node and attempt, renewed when
it was; then the table goes. Plain ORM, so it runs alike on SQLite and PostgreSQL."""

from django.db import migrations

HOLDER_SUFFIX = ":attempt-"


def into_work_leases(apps, schema_editor):
    TaskLease = apps.get_model("tasks", "TaskLease")
    WorkLease = apps.get_model("core", "WorkLease")
    for lease in TaskLease.objects.all().iterator():
        WorkLease.objects.update_or_create(
            key=f"task:{lease.task_id}",
            defaults={"holder": f"{lease.node}{HOLDER_SUFFIX}{lease.attempt}"[:250],
                      "last_seen_at": lease.last_seen_at})


def back_to_task_leases(apps, schema_editor):
    TaskLease = apps.get_model("tasks", "TaskLease")
    WorkLease = apps.get_model("core", "WorkLease")
    Task = apps.get_model("tasks", "Task")
    for lease in WorkLease.objects.filter(key__startswith="task:").iterator():
        task_id = lease.key.removeprefix("task:")
        node, _, attempt = lease.holder.rpartition(HOLDER_SUFFIX)
        if not attempt.isdigit():  # a lease the lifecycle wrote: the task row knows its attempt
            node = lease.holder
            attempt = Task.objects.filter(id=task_id).values_list("attempt", flat=True).first()
        TaskLease.objects.update_or_create(
            task_id=task_id, defaults={"attempt": int(attempt or 0), "node": node[:200],
                                       "last_seen_at": lease.last_seen_at})
        lease.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0003_trainedmodel_moves_to_modelregistry"),
        ("core", "0001_work_lease"),
    ]

    operations = [
        migrations.RunPython(into_work_leases, back_to_task_leases),
        migrations.DeleteModel(name="TaskLease"),
    ]
