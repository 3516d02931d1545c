"""`manage.py create_account EMAIL [--password P] [--balance N] [--reseller] [--staff] [--json]`

Lives in billing, not accounts, because an opening balance is a ledger top-up and
accounts may not import billing."""

import json
import sys
from argparse import ArgumentParser
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from accounts.services import account_create
from billing.services import topup
from zerotp import errors


def exit_one_on_bad_arguments[P: ArgumentParser](parser: P) -> P:
    """argparse exits 2 on a bad argument; the contract says 1, with the reason on stderr."""

    def error(message: str) -> NoReturn:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: {message}\n")
        sys.exit(1)

    parser.error = error  # type: ignore[method-assign]
    return parser


class Command(BaseCommand):
    help = "Create an account and print its keys."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return exit_one_on_bad_arguments(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--password", help="Lets the account log in to the dashboard.")
        parser.add_argument("--balance", type=int, default=0, help="Opening balance in rupiah.")
        parser.add_argument("--reseller", action="store_true", help="Also create an agent key.")
        parser.add_argument("--staff", action="store_true", help="Allow the Django admin.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid email address.") from None
        if options["balance"] < 0:
            raise CommandError("--balance must be zero or more.")
        try:
            with transaction.atomic():
                account = account_create(
                    email=email,
                    password=options["password"],
                    is_reseller=options["reseller"],
                    is_staff=options["staff"],
                    with_api_key=True,  # printed below
                )
                if options["balance"]:
                    topup(user=account.user, amount=options["balance"], note="opening balance")
        except errors.DomainError as exc:
            raise CommandError(exc.message) from None
        user = account.user
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "email": user.email,
                        "api_key": account.api_key,
                        "agent_key": account.agent_key,
                        "callback_secret": user.callback_secret,
                    }
                )
            )
            return
        self.stdout.write(f"Created {user.email} (balance {options['balance']} IDR)")
        self.stdout.write(f"  API key (X-API-KEY):     {account.api_key}")
        if account.agent_key:
            self.stdout.write(f"  Agent key (X-AGENT-KEY): {account.agent_key}")
        self.stdout.write(f"  Callback secret:         {user.callback_secret}")
        self.stdout.write("Keys are stored hashed: this is the only time they are shown.")
