"""`manage.py demo_accounts`: the accounts `make run` prints keys for.

Keys are stored hashed, so old ones cannot be shown again: every run issues fresh ones
(the previous keys stop working). Balances are topped up only when the account is new."""

from typing import Any

from django.core.management.base import BaseCommand

from accounts.models import ApiKey, User
from accounts.services import account_create, key_issue
from billing.services import topup

BUYER = "buyer@demo.zerotp.local"
RESELLER = "reseller@demo.zerotp.local"
STAFF = "admin@demo.zerotp.local"
DEMO_PASSWORD = "zerotp-demo"  # noqa: S105 (printed on purpose: local demo only)
OPENING_BALANCE = 100_000


class Command(BaseCommand):
    help = "Create the demo buyer, reseller and staff accounts and print fresh keys."

    def handle(self, *args: Any, **options: Any) -> None:
        keys: dict[str, str] = {}
        for email, reseller, staff in (
            (BUYER, False, False),
            (RESELLER, True, False),
            (STAFF, False, True),
        ):
            user = User.objects.filter(email=email).first()
            if user is None:
                account = account_create(
                    email=email, password=DEMO_PASSWORD, is_reseller=reseller, is_staff=staff
                )
                user = account.user
                if staff:
                    User.objects.filter(pk=user.pk).update(is_superuser=True)
                if not reseller and not staff:
                    topup(user=user, amount=OPENING_BALANCE, note="demo opening balance")
            keys[email] = key_issue(user=user, kind=ApiKey.Kind.API).key
            if reseller:
                keys["agent"] = key_issue(user=user, kind=ApiKey.Kind.AGENT).key
        out = self.stdout.write
        out("")
        out(f"Demo accounts (password for the dashboard and admin: {DEMO_PASSWORD})")
        out(f"  buyer     {BUYER}")
        out(f"  reseller  {RESELLER}")
        out(f"  staff     {STAFF}")
        out("Fresh keys for this run (paste into the README's quickstart):")
        out(f"  export API_KEY={keys[BUYER]}")
        out(f"  export AGENT_KEY={keys['agent']}")
        out("")
