"""`manage.py stock_count`: compare the stock's kept counts with a count from scratch, and
exit non-zero on any difference; with `--recount`, count from scratch instead (after
loading modems or orders with the triggers off, as the bench's seed does)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from orders.statements.stock_counts import recount, stock_differences


class Command(BaseCommand):
    help = "Check the stock's kept counts against a count from scratch (--recount: redo them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--recount", action="store_true", help="count from scratch")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["recount"]:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in recount():
                    cursor.execute(statement)
            self.stdout.write("Stock counted from scratch.")
            return
        problems = stock_differences()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"The stock's counts have {len(problems)} difference(s).")
        self.stdout.write("Stock counts equal a count from scratch.")
