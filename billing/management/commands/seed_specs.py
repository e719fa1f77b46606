from django.core.management.base import BaseCommand

from billing.catalogue import seed_default_specs


class Command(BaseCommand):
    help = "Create the default compute specs that are missing."

    def handle(self, *args: object, **options: object) -> None:
        created = seed_default_specs()
        self.stdout.write(f"{created} compute spec(s) created.")
