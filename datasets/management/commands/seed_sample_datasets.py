from django.core.management.base import BaseCommand, CommandParser

from datasets.samples import seed_samples


class Command(BaseCommand):
    help = "Create the built-in sample datasets that are missing (one per scenario), validated."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--images", type=int, default=None,
                            help="Cap each sample at this many images (quick seeds for tests).")

    def handle(self, *args: object, images: int | None = None, **options: object) -> None:
        created = seed_samples(images=images)
        for dataset in created:
            self.stdout.write(f"{dataset.name}: {dataset.state}, {dataset.image_count} images")
        self.stdout.write(f"{len(created)} sample dataset(s) created.")
