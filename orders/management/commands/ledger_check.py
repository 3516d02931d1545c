"""`manage.py ledger_check`: recompute the books and exit non-zero on any difference.

Every cached balance must equal the sum of its entries, every ledger transaction must sum
to zero, payouts-pending must equal the waiting withdrawals and a top-up must be credited
exactly when paid (billing.services.ledger_differences), and platform escrow must equal the
prices of the pending orders (whose holds it carries). It lives in orders because the last
rule needs orders; billing knows none."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from billing.models import LedgerAccount
from billing.services import ledger_differences, platform_balance
from orders.models import JobRun, Order, OrderStatus
from orders.services import job_run_record


def escrow_difference() -> str | None:
    escrow = platform_balance(LedgerAccount.Kind.ESCROW)
    held = Order.objects.filter(status=OrderStatus.PENDING).aggregate(total=Sum("price"))["total"]
    held = held or 0
    if escrow != held:
        return f"escrow holds {escrow} but the pending orders' prices sum to {held}"
    return None


class Command(BaseCommand):
    help = "Check the ledger: balances, zero-sum transactions, escrow against pending orders."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_differences()
        escrow = escrow_difference()
        if escrow:
            problems.append(escrow)
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"The ledger has {len(problems)} difference(s).")
        accounts = LedgerAccount.objects.count()
        job_run_record(name=JobRun.Job.LEDGER_CHECK)  # /metrics shows its age
        self.stdout.write(
            f"Ledger sound: {accounts} accounts balance, every transaction sums to 0, "
            "escrow equals the pending orders, payouts-pending the waiting withdrawals, "
            "and every paid top-up is credited once."
        )
