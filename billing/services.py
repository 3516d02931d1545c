"""Money movements. Each is one ledger transaction: entries summing to zero, a unique
reference, and the cached balances updated in the same database transaction.

Locks are taken in one fixed order: user wallets first (by id), then platform accounts
(by id). The platform accounts are the rows every order touches, so they are locked
last and held for the shortest time, and no two movements can wait on each other.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from accounts.models import User
from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from zerotp import errors

Kind = LedgerAccount.Kind
TxKind = LedgerTransaction.Kind


class AlreadyBooked(Exception):
    """A movement with this reference exists: it must not happen twice."""


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: int


def platform_accounts(*kinds: str) -> dict[str, LedgerAccount]:
    found = {a.kind: a for a in LedgerAccount.objects.filter(kind__in=kinds, user__isnull=True)}
    for kind in kinds:
        if kind not in found:
            found[kind], _ = LedgerAccount.objects.get_or_create(kind=kind, user=None)
    return found


def wallet_of(user: User | int) -> LedgerAccount:
    user_id = user if isinstance(user, int) else user.pk
    account, _ = LedgerAccount.objects.get_or_create(kind=Kind.WALLET, user_id=user_id)
    return account


def wallet_for_update(user: User) -> LedgerAccount:
    """The user's wallet, row-locked until the end of the transaction (PostgreSQL), so that
    one buyer's concurrent orders see each other's holds."""
    account = LedgerAccount.objects.select_for_update().filter(kind=Kind.WALLET, user=user).first()
    return account or wallet_of(user)


def wallet_balance(user: User) -> int:
    balance = LedgerAccount.objects.filter(user=user).values_list("balance", flat=True).first()
    return balance or 0


def _lock_order(leg: Leg) -> tuple[int, int]:
    return (0 if leg.account.kind == Kind.WALLET else 1, leg.account.pk)


def transfer(
    *, reference: str, kind: str, legs: Sequence[Leg], memo: str = ""
) -> LedgerTransaction:
    """Book one movement. Raises AlreadyBooked for a reused reference and
    InsufficientBalance when a debit would take a wallet or escrow below zero; either way
    nothing of it is written (the caller's transaction should roll back too)."""
    if len(legs) < 2 or sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"Ledger legs of {reference} must be two or more and sum to zero.")
    if any(leg.amount == 0 for leg in legs):
        raise ValueError(f"Ledger legs of {reference} must not be zero.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                tx = LedgerTransaction.objects.create(reference=reference, kind=kind, memo=memo)
        except IntegrityError:
            raise AlreadyBooked(reference) from None
        for leg in sorted(legs, key=_lock_order):
            accounts = LedgerAccount.objects.filter(pk=leg.account.pk)
            if leg.amount < 0 and leg.account.kind != Kind.EXTERNAL:
                accounts = accounts.filter(balance__gte=-leg.amount)
            if accounts.update(balance=F("balance") + leg.amount) != 1:
                raise errors.InsufficientBalance(f"The balance is below {-leg.amount}.")
        LedgerEntry.objects.bulk_create(
            LedgerEntry(transaction=tx, account=leg.account, amount=leg.amount) for leg in legs
        )
    return tx


def topup(*, user: User, amount: int, note: str = "", reference: str | None = None) -> int:
    """Credit a wallet from the external source; returns the new balance."""
    if not isinstance(amount, int) or amount <= 0:
        raise errors.InvalidRequest("A top-up amount must be a positive whole number of rupiah.")
    with transaction.atomic():
        wallet = wallet_of(user)
        external = platform_accounts(Kind.EXTERNAL)[Kind.EXTERNAL]
        transfer(
            reference=reference or f"topup:{uuid.uuid4()}",
            kind=TxKind.TOPUP,
            legs=[Leg(wallet, amount), Leg(external, -amount)],
            memo=note[:255],
        )
        wallet.refresh_from_db(fields=["balance"])
    return wallet.balance


def hold(*, reference: str, wallet: LedgerAccount, amount: int) -> None:
    """Buyer to escrow: the price of a new order."""
    escrow = platform_accounts(Kind.ESCROW)[Kind.ESCROW]
    transfer(
        reference=reference, kind=TxKind.HOLD, legs=[Leg(wallet, -amount), Leg(escrow, amount)]
    )


def reseller_share(amount: int) -> int:
    """RESELLER_SHARE_PERCENT of the amount, rounded down; the platform keeps the rest."""
    return amount * settings.RESELLER_SHARE_PERCENT // 100


def capture(*, reference: str, reseller: User | int, amount: int) -> int:
    """Escrow to the reseller's share and the rest to platform revenue.
    Returns the reseller's share."""
    share = reseller_share(amount)
    accounts = platform_accounts(Kind.ESCROW, Kind.REVENUE)
    legs = [Leg(accounts[Kind.ESCROW], -amount)]
    if share:
        legs.append(Leg(wallet_of(reseller), share))
    if amount - share:
        legs.append(Leg(accounts[Kind.REVENUE], amount - share))
    transfer(reference=reference, kind=TxKind.CAPTURE, legs=legs)
    return share


def release(*, reference: str, buyer: User | int, amount: int) -> None:
    """Escrow back to the buyer: a cancelled or expired order."""
    escrow = platform_accounts(Kind.ESCROW)[Kind.ESCROW]
    transfer(
        reference=reference,
        kind=TxKind.RELEASE,
        legs=[Leg(escrow, -amount), Leg(wallet_of(buyer), amount)],
    )


def ledger_differences() -> list[str]:
    """Every way the ledger disagrees with itself: balances that differ from the sum of
    their entries, and transactions whose entries do not sum to zero. Empty when sound."""
    problems: list[str] = []
    sums = dict(
        LedgerEntry.objects.values("account")
        .annotate(total=Sum("amount"))
        .values_list("account", "total")
    )
    for account in LedgerAccount.objects.all():
        expected = sums.get(account.pk, 0)
        if account.balance != expected:
            problems.append(f"{account} balance {account.balance} != entries {expected}")
    unbalanced: Iterable[tuple[str, int]] = (
        LedgerTransaction.objects.annotate(total=Sum("entries__amount"))
        .exclude(total=0)
        .values_list("reference", "total")
    )
    problems += [f"transaction {ref} sums to {total}" for ref, total in unbalanced]
    return problems
