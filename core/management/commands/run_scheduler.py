from django.core.management.base import BaseCommand

from core import scheduler
from core.actors import discover


class Command(BaseCommand):
    help = "Run periodic jobs (exactly one scheduler per deployment)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--once", action="store_true", help="Run due jobs once and exit.")

    def handle(self, *args: object, once: bool = False, **options: object) -> None:
        discover()
        names = ", ".join(job.name for job in scheduler.jobs()) or "none"
        self.stdout.write(f"Periodic jobs: {names}")
        if once:
            scheduler.run_due()
            return
        scheduler.run_forever()
