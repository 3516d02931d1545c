"""`manage.py topup EMAIL AMOUNT [--note TEXT]`: credit a balance through the ledger."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from billing.management.commands.create_account import exit_one_on_bad_arguments
from billing.services import topup
from zerotp import errors


class Command(BaseCommand):
    help = "Credit an account's balance (a ledger top-up from the external source)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return exit_one_on_bad_arguments(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("amount", type=int, help="Rupiah, a positive whole number.")
        parser.add_argument("--note", default="", help="Shown in the ledger.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email__iexact=options["email"].strip()).first()
        if user is None:
            raise CommandError(f"There is no account {options['email']}.")
        try:
            balance = topup(user=user, amount=options["amount"], note=options["note"] or "top-up")
        except errors.DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Credited {options['amount']} IDR to {user.email}; balance {balance} IDR."
        )
