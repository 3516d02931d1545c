"""`manage.py kept_counts`: compare the stock's kept counts with a count from scratch, and
exit non-zero on any difference; with `--recount`, count the stock and the deliverability
from scratch instead (after loading modems or orders with the triggers off, as the bench's
seed does)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from orders.services import numbers_rest
from orders.statements import deliverability, stock_counts


class Command(BaseCommand):
    help = (
        "Check the stock's counts against a count from scratch (--recount: redo them and "
        "the deliverability figures' counts)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--recount", action="store_true", help="count from scratch")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["recount"]:
            # The records first: which numbers rest is written from them, and the stock
            # counts the resting ones.
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in deliverability.recount(connection.vendor):
                    cursor.execute(statement)
                numbers_rest()
                for statement in stock_counts.recount():
                    cursor.execute(statement)
            self.stdout.write("Stock and deliverability counted from scratch.")
            return
        problems = stock_counts.stock_differences()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"The stock's counts have {len(problems)} difference(s).")
        self.stdout.write("Stock counts equal a count from scratch.")
