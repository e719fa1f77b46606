from django.core.management.base import BaseCommand, CommandError

from eventlog import partitioning


class Command(BaseCommand):
    help = ("PostgreSQL: convert the event table to one range-partitioned by position while the "
            "platform runs (--size), or add partitions ahead of the log's head (--ahead alone).")

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--size", type=int,
                            help="transaction ids per partition (a position is the writing "
                                 "transaction's id << 12 plus its event number); converts")
        parser.add_argument("--ahead", type=int, default=2,
                            help="partitions to keep beyond the one the head is in (default 2)")
        parser.add_argument("--page", type=int, default=50_000, help="events copied per page")

    def handle(self, *args: object, size: int | None, ahead: int, page: int,
               **options: object) -> None:
        try:
            if size is None:
                made = partitioning.add_partitions(ahead)
                self.stdout.write(f"added {len(made)} partition(s): {', '.join(made) or '-'}")
                return
            copied = partitioning.convert(
                size, ahead=ahead, page=page,
                progress=lambda n: self.stdout.write(f"copied {n:,} event(s)"))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{partitioning.TABLE} is partitioned by position ({copied:,} events "
                          f"copied); the old table is {partitioning.OLD}: drop it once checked")
