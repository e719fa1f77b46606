from django.core.management.base import BaseCommand, CommandError

from eventlog import projections
from eventlog.rebuild import Progress


class Command(BaseCommand):
    help = ("Replay the whole event log into the read models (on PostgreSQL into fresh tables "
            "swapped in at the end, while the live ones keep serving).")

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("names", nargs="*", help="Projection names (default: all).")
        parser.add_argument("--in-place", action="store_true",
                            help="Empty the live tables and replay into them (no shadow tables).")
        parser.add_argument("--page", type=int, default=10_000, help="Events per batch.")

    def handle(self, *args: object, names: list[str], in_place: bool, page: int,
               **options: object) -> None:
        known = {p.name for p in projections.registered()}
        unknown = sorted(set(names) - known)
        if unknown:
            raise CommandError(f"Unknown projection(s): {', '.join(unknown)}. "
                               f"Known: {', '.join(sorted(known))}.")
        if page < 1:
            raise CommandError("--page must be a positive number of events.")
        shadow = False if in_place else None
        handled = projections.rebuild(names or None, progress=self._progress, page=page,
                                      shadow=shadow)
        for name, count in handled.items():
            self.stdout.write(f"{name}: replayed {count} event(s)")

    def _progress(self, progress: Progress) -> None:
        eta = "" if progress.eta_s is None else f", ETA {progress.eta_s:.0f} s"
        total = "" if progress.total is None else f"/{progress.total:,}"
        self.stdout.write(f"{progress.phase}: {progress.done:,}{total} events, "
                          f"{progress.rate:,.0f} events/s{eta}")
