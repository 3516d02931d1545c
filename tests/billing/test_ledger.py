"""The ledger: entries sum to zero, references are unique, balances never go negative."""

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings

from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import (
    AlreadyBooked,
    Leg,
    capture,
    hold,
    ledger_differences,
    platform_accounts,
    release,
    topup,
    transfer,
    wallet_balance,
    wallet_of,
)
from tests.factories import make_agent, make_buyer
from zerotp import errors

pytestmark = pytest.mark.django_db

Kind = LedgerAccount.Kind


def balance_of(kind: str) -> int:
    return platform_accounts(kind)[kind].balance


def test_a_topup_credits_the_wallet_from_the_external_source() -> None:
    buyer = make_buyer()

    assert topup(user=buyer.user, amount=25_000, note="bank transfer") == 25_000

    assert wallet_balance(buyer.user) == 25_000
    assert balance_of(Kind.EXTERNAL) == -25_000
    tx = LedgerTransaction.objects.get(kind="topup")
    assert tx.memo == "bank transfer"
    assert sorted(tx.entries.values_list("amount", flat=True)) == [-25_000, 25_000]


@pytest.mark.parametrize("amount", [0, -5, 1.5, "100"])
def test_a_topup_must_be_a_positive_whole_number(amount: object) -> None:
    buyer = make_buyer()
    with pytest.raises(errors.InvalidRequest):
        topup(user=buyer.user, amount=amount)
    assert LedgerTransaction.objects.count() == 0


def test_hold_capture_split_seventy_thirty_rounded_down() -> None:
    buyer, agent = make_buyer(balance=10_000), make_agent()
    hold(reference="order:1:hold", buyer=buyer.user, amount=3333)
    assert balance_of(Kind.ESCROW) == 3333

    share = capture(reference="order:1:capture", reseller=agent.user, amount=3333)

    assert share == 2333
    assert wallet_balance(agent.user) == 2333
    assert balance_of(Kind.REVENUE) == 1000
    assert balance_of(Kind.ESCROW) == 0
    assert wallet_balance(buyer.user) == 10_000 - 3333


@override_settings(RESELLER_SHARE_PERCENT=100)
def test_a_full_share_books_no_zero_revenue_entry() -> None:
    buyer, agent = make_buyer(balance=1000), make_agent()
    hold(reference="order:2:hold", buyer=buyer.user, amount=1000)
    capture(reference="order:2:capture", reseller=agent.user, amount=1000)
    assert wallet_balance(agent.user) == 1000
    assert not LedgerEntry.objects.filter(amount=0).exists()


def test_release_returns_escrow_to_the_buyer() -> None:
    buyer = make_buyer(balance=5000)
    hold(reference="order:3:hold", buyer=buyer.user, amount=5000)
    assert wallet_balance(buyer.user) == 0

    release(reference="order:3:release", buyer=buyer.user, amount=5000)

    assert wallet_balance(buyer.user) == 5000
    assert balance_of(Kind.ESCROW) == 0


def test_the_same_reference_cannot_be_booked_twice() -> None:
    buyer = make_buyer(balance=5000)
    hold(reference="order:4:hold", buyer=buyer.user, amount=1000)
    release(reference="order:4:release", buyer=buyer.user, amount=1000)

    # Like every caller, roll back the enclosing transaction when a movement is refused.
    with pytest.raises(AlreadyBooked), transaction.atomic():
        release(reference="order:4:release", buyer=buyer.user, amount=1000)

    assert wallet_balance(buyer.user) == 5000
    assert LedgerTransaction.objects.filter(reference="order:4:release").count() == 1


def test_a_debit_beyond_the_balance_is_refused_and_writes_nothing() -> None:
    buyer = make_buyer(balance=999)
    with pytest.raises(errors.InsufficientBalance), transaction.atomic():
        hold(reference="order:5:hold", buyer=buyer.user, amount=1000)
    assert wallet_balance(buyer.user) == 999
    assert not LedgerTransaction.objects.filter(reference="order:5:hold").exists()


def test_escrow_cannot_be_released_beyond_what_it_holds() -> None:
    buyer = make_buyer(balance=1000)
    with pytest.raises(errors.InsufficientBalance), transaction.atomic():
        release(reference="order:6:release", buyer=buyer.user, amount=1)
    assert balance_of(Kind.ESCROW) == 0


def test_a_credit_creates_an_account_that_does_not_exist_yet() -> None:
    buyer = make_buyer()
    assert not LedgerAccount.objects.filter(user=buyer.user).exists()
    topup(user=buyer.user, amount=10)
    assert wallet_balance(buyer.user) == 10


def test_a_debit_from_an_account_that_does_not_exist_is_insufficient_balance() -> None:
    buyer = make_buyer()
    with pytest.raises(errors.InsufficientBalance), transaction.atomic():
        hold(reference="order:9:hold", buyer=buyer.user, amount=1)
    assert not LedgerAccount.objects.filter(user=buyer.user).exists()


def test_the_database_refuses_a_negative_wallet_whatever_python_does() -> None:
    buyer = make_buyer(balance=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerAccount.objects.filter(user=buyer.user).update(balance=-1)


def test_the_external_source_alone_may_run_negative() -> None:
    accounts = platform_accounts(Kind.EXTERNAL, Kind.ESCROW, Kind.REVENUE)
    LedgerAccount.objects.filter(pk=accounts[Kind.EXTERNAL].pk).update(balance=-(10**12))
    for kind in (Kind.ESCROW, Kind.REVENUE):
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerAccount.objects.filter(pk=accounts[kind].pk).update(balance=-1)
    LedgerAccount.objects.filter(pk=accounts[Kind.EXTERNAL].pk).update(balance=0)


@pytest.mark.parametrize(
    "amounts", [[100, -99], [100], [0, 0], [50, -50, 0]], ids=["unbalanced", "one", "zeros", "zero"]
)
def test_legs_must_balance_and_be_non_zero(amounts: list[int]) -> None:
    buyer = make_buyer(balance=100)
    accounts = [Leg.wallet(buyer.user, 0), Leg(Kind.ESCROW, 0), Leg(Kind.REVENUE, 0)]
    with pytest.raises(ValueError):
        transfer(
            reference="bad",
            kind="hold",
            legs=[
                Leg(leg.kind, amount, leg.user_id)
                for leg, amount in zip(accounts, amounts, strict=False)
            ],
        )
    assert not LedgerTransaction.objects.filter(reference="bad").exists()


def test_ledger_differences_finds_a_tampered_balance_and_an_unbalanced_transaction() -> None:
    buyer = make_buyer(balance=500)
    assert ledger_differences() == []

    LedgerAccount.objects.filter(user=buyer.user).update(balance=501)
    tx = LedgerTransaction.objects.create(reference="tampered", kind="topup")
    LedgerEntry.objects.create(transaction=tx, account=wallet_of(buyer.user), amount=7)

    problems = ledger_differences()
    assert any("balance 501 != entries 507" in p for p in problems)
    assert any("tampered sums to 7" in p for p in problems)
    # Put it right again for the autouse invariant check.
    LedgerEntry.objects.filter(transaction=tx).delete()
    tx.delete()
    LedgerAccount.objects.filter(user=buyer.user).update(balance=500)
