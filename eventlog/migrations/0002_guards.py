from django.db import migrations

from eventlog import guards


def install(apps, schema_editor):
    guards.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    guards.drop_guards(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("eventlog", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
