from django.core.management.base import BaseCommand, CommandError

from eventlog import projections


class Command(BaseCommand):
    help = "Empty read models and replay the whole event log into them."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("names", nargs="*", help="Projection names (default: all).")

    def handle(self, *args: object, names: list[str], **options: object) -> None:
        known = {p.name for p in projections.registered()}
        unknown = sorted(set(names) - known)
        if unknown:
            raise CommandError(f"Unknown projection(s): {', '.join(unknown)}. "
                               f"Known: {', '.join(sorted(known))}.")
        for name, count in projections.rebuild(names or None).items():
            self.stdout.write(f"{name}: replayed {count} event(s)")
