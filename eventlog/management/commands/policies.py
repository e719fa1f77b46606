from django.core.management.base import BaseCommand, CommandError

from eventlog import policies
from eventlog.models import PolicyDeadLetter


class Command(BaseCommand):
    help = ("The log's policies (reactions between apps): where each stands, the events they "
            "gave up on (dead letters), and retrying or dismissing those.")

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("status", help="Each policy's checkpoint, waiting events and open "
                                          "dead letters.")
        letters = actions.add_parser("dead-letters", help="Open dead letters (--all: resolved "
                                                          "ones too).")
        letters.add_argument("--all", action="store_true")
        for name, what in (("retry", "React to the dead letter's event once more."),
                           ("dismiss", "Close the dead letter without reacting.")):
            action = actions.add_parser(name, help=what)
            action.add_argument("letter", type=int, help="The dead letter's id.")

    def handle(self, *args: object, action: str, **options: object) -> None:
        if action == "status":
            for row in policies.status():
                self.stdout.write(f"{row.name}: checkpoint {row.checkpoint}, "
                                  f"{row.waiting} event(s) waiting, "
                                  f"{row.dead_letters} open dead letter(s)")
        elif action == "dead-letters":
            letters = PolicyDeadLetter.objects.order_by("id")
            if not options["all"]:
                letters = letters.filter(resolution="")
            for letter in letters:
                self.stdout.write(
                    f"{letter.id}\t{letter.policy}\tevent {letter.position} "
                    f"({letter.event_type} of {letter.stream_type} {letter.stream_id})\t"
                    f"{letter.attempts} attempt(s)\t{letter.resolution or 'open'}\t"
                    f"{letter.error}")
        else:
            letter_id = options["letter"]
            if not PolicyDeadLetter.objects.filter(id=letter_id).exists():
                raise CommandError(f"No dead letter {letter_id}.")
            try:
                outcome = (policies.retry_dead_letter(letter_id) if action == "retry"
                           else policies.dismiss_dead_letter(letter_id))
            except policies.DeadLetterRetryFailed as exc:
                raise CommandError(f"Dead letter {letter_id} failed again: {exc}") from None
            self.stdout.write(f"dead letter {letter_id}: {outcome}")
