"""What the finance page reads: money in and out today, what waits, and the ledger's
entries for a period (billing/views.py renders them)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Sum
from django.utils import timezone

from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction, TopUp, Withdrawal
from billing.services import platform_balance

Kind = LedgerAccount.Kind


@dataclass(frozen=True)
class FinanceFigures:
    topups_today: int
    topped_up_today: int
    topups_waiting: int
    withdrawals_waiting: int
    withdrawals_waiting_amount: int
    paid_out_today: int
    revenue_today: int
    escrow: int
    payouts_pending: int
    buyers_hold: int  # every wallet together: what buyers and resellers may still spend


def finance_figures() -> FinanceFigures:
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    paid_today = TopUp.objects.filter(status=TopUp.Status.PAID, closed_at__gte=midnight)
    topped = paid_today.aggregate(n=Count("id"), total=Sum("payable"))
    waiting = Withdrawal.objects.filter(status=Withdrawal.Status.PENDING).aggregate(
        n=Count("id"), total=Sum("amount")
    )
    paid_out = Withdrawal.objects.filter(
        status=Withdrawal.Status.PAID, decided_at__gte=midnight
    ).aggregate(total=Sum("amount"))
    revenue = LedgerEntry.objects.filter(
        account__kind=Kind.REVENUE, created_at__gte=midnight
    ).aggregate(total=Sum("amount"))
    wallets = LedgerAccount.objects.filter(kind=Kind.WALLET).aggregate(total=Sum("balance"))
    return FinanceFigures(
        topups_today=topped["n"] or 0,
        topped_up_today=topped["total"] or 0,
        topups_waiting=TopUp.objects.filter(status=TopUp.Status.PENDING).count(),
        withdrawals_waiting=waiting["n"] or 0,
        withdrawals_waiting_amount=waiting["total"] or 0,
        paid_out_today=paid_out["total"] or 0,
        revenue_today=revenue["total"] or 0,
        escrow=platform_balance(Kind.ESCROW),
        payouts_pending=platform_balance(Kind.PAYOUTS_PENDING),
        buyers_hold=wallets["total"] or 0,
    )


def ledger_rows(*, since: datetime, until: datetime) -> Iterator[tuple]:
    """(time, reference, kind, account, email, amount, memo) of every entry booked in
    [since, until), oldest first, read in chunks."""
    entries = (
        LedgerEntry.objects.filter(created_at__gte=since, created_at__lt=until)
        .order_by("id")
        .values_list(
            "created_at",
            "transaction__reference",
            "transaction__kind",
            "account__kind",
            "account__user__email",
            "amount",
            "transaction__memo",
        )
    )
    kinds = dict(LedgerTransaction.Kind.choices)
    for at, reference, kind, account, email, amount, memo in entries.iterator(chunk_size=2000):
        yield (at.isoformat(), reference, kinds.get(kind, kind), account, email or "", amount, memo)
