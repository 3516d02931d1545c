"""Money in and out: buyers' top-ups and resellers' withdrawals, through the API and the
services staff use (billing/topups.py, billing/withdrawals.py).

A bank-transfer top-up asks for its amount plus a 3-digit suffix no other pending one asks
for, and is paid when staff paste a bank statement line with exactly that amount (BCA,
Mandiri and BRI print amounts differently); however often the line is pasted, or the
payment confirmed, the wallet is credited once (`topup:<id>`). A withdrawal leaves the
wallet for payouts-pending at once (`withdrawal:<id>`), then is paid out (`:paid`) or
given back (`:returned`), one or the other, once, with one email.

The races (real threads, each its own connection and transaction, as under gunicorn) run
on PostgreSQL only, where the conditional UPDATEs, row locks and unique indexes decide
between transactions that truly overlap; on SQLite writers queue anyway. The autouse
ledger check (tests/conftest.py) runs after every test: it also holds payouts-pending to
the waiting withdrawals and a paid top-up to one credit."""

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import account_create
from billing import topups as topups_module
from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction, TopUp, Withdrawal
from billing.services import topup, wallet_balance
from billing.topups import (
    line_amounts,
    topup_create,
    topup_fail,
    topup_pay,
    topups_expire,
    transfers_confirm,
)
from billing.withdrawals import withdrawal_pay, withdrawal_reject, withdrawal_request
from orders.models import Order
from tests.concurrency import run_at_once
from tests.factories import ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer
from zerotp import errors

pytestmark = pytest.mark.django_db

RACE = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
Kind = LedgerAccount.Kind

_emails = itertools.count(1)

BANK_ACCOUNTS = [
    "BCA 872 0123 456 a.n. PT Zero TP Indonesia",
    "Mandiri 137 00 1234567 8 a.n. PT Zero TP Indonesia",
]


def races(func: Callable) -> Callable:
    for mark in RACE:
        func = mark(func)
    return func


# --- helpers ------------------------------------------------------------------------------


def reseller(balance: int = 0) -> Buyer:
    """A reseller with an API key (a reseller is a buyer too), and money on the wallet."""
    account = account_create(
        email=f"seller{next(_emails)}@example.com", is_reseller=True, with_api_key=True
    )
    if balance:
        topup(user=account.user, amount=balance)
    return Buyer(user=account.user, key=account.api_key)


def post(path: str, body: Any, key: str | None) -> tuple[int, dict]:
    headers = {"HTTP_X_API_KEY": key} if key else {}
    response = APIClient().post(path, body, format="json", **headers)
    return response.status_code, response.json()


def get(path: str, key: str) -> tuple[int, dict]:
    response = APIClient().get(path, HTTP_X_API_KEY=key)
    return response.status_code, response.json()


def platform(kind: str) -> int:
    balance = LedgerAccount.objects.filter(kind=kind, user__isnull=True).values_list(
        "balance", flat=True
    )
    return balance.first() or 0


def booked(reference: str) -> int:
    return LedgerTransaction.objects.filter(reference=reference).count()


def legs(reference: str) -> dict[str, int]:
    """The transaction's entries as {"wallet:<user id>" or the platform kind: amount}."""
    entries = LedgerEntry.objects.filter(transaction__reference=reference).select_related("account")
    return {
        f"wallet:{e.account.user_id}" if e.account.user_id else e.account.kind: e.amount
        for e in entries
    }


def dotted(amount: int) -> str:
    """1250347 -> "1.250.347" (BCA and Mandiri internet banking)."""
    return f"{amount:,}".replace(",", ".")


def bca_line(amount: int, name: str = "BUDI SANTOSO") -> str:
    return f"05/12 TRSF E-BANKING CR 0512/FTSCY/WS95031 {dotted(amount)},00 {name}"


def mandiri_line(amount: int) -> str:
    return f"05/12/2024 10:42:17 TRANSFER DARI SITI RAHAYU Rp {amount:,}.00 CR"


def bri_line(amount: int) -> str:
    return f"2024-12-05 NBMB ANDI WIJAYA TO ZERO TP {amount}"


def manual(buyer: Buyer, amount: int = 100_000) -> TopUp:
    return topup_create(user=buyer.user, amount=amount, provider="manual")


_MISSING = object()  # a field left out of the body


def withdrawal_body(amount: int = 60_000, **changes: Any) -> dict[str, Any]:
    body = {
        "amount": amount,
        "method": "bank",
        "account_name": "Budi Santoso",
        "account_number": "8720123456",
        "bank_or_wallet": "BCA",
    }
    return {k: v for k, v in (body | changes).items() if v is not _MISSING}


def withdraw(who: Buyer, amount: int = 60_000) -> Withdrawal:
    return withdrawal_request(
        reseller=who.user,
        amount=amount,
        method="bank",
        account_name="Budi Santoso",
        account_number="8720123456",
        bank_or_wallet="BCA",
    )


def jittered(call: Callable[[], Any], most_ms: float = 4.0) -> Callable[[], Any]:
    def run() -> Any:
        time.sleep(random.uniform(0, most_ms) / 1000)
        return call()

    return run


# --- top-ups over the API -----------------------------------------------------------------


def test_a_manual_topup_asks_for_the_amount_plus_a_suffix_and_names_the_bank_accounts(
    settings: Any,
) -> None:
    settings.MANUAL_BANK_ACCOUNTS = BANK_ACCOUNTS
    settings.MANUAL_TOPUP_HOURS = 6
    buyer = make_buyer()

    status, body = post("/api/v1/topups", {"amount": 150_000, "provider": "manual"}, buyer.key)

    assert status == 201, body
    assert body["provider"] == "manual" and body["amount"] == 150_000
    assert 1 <= body["payable"] - 150_000 <= 999
    assert body["bank_accounts"] == BANK_ACCOUNTS
    assert (body["status"], body["redirect_url"], body["closed_at"]) == ("pending", None, None)
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(hours=6)
    row = TopUp.objects.get(pk=body["id"])
    assert (row.user, row.payable, row.status) == (buyer.user, body["payable"], "pending")
    assert wallet_balance(buyer.user) == 0  # asked for, not paid
    assert not LedgerTransaction.objects.filter(reference=f"topup:{row.pk}").exists()

    assert get(f"/api/v1/topups/{row.pk}", buyer.key) == (200, body)
    status, listed = get("/api/v1/topups", buyer.key)
    assert (status, listed["results"]) == (200, [body])
    # Another buyer sees neither the top-up nor it in a list.
    other = make_buyer()
    status, missing = get(f"/api/v1/topups/{row.pk}", other.key)
    assert (status, missing["error"]["code"]) == (404, "not_found")
    assert get("/api/v1/topups", other.key) == (200, {"results": [], "next": None})


def test_pending_topups_of_the_same_amount_never_ask_for_the_same_payable() -> None:
    buyer = make_buyer()
    status, first = post("/api/v1/topups", {"amount": 50_000, "provider": "manual"}, buyer.key)
    assert status == 201, first
    status, second = post("/api/v1/topups", {"amount": 50_000, "provider": "manual"}, buyer.key)
    assert status == 201, second
    assert first["payable"] != second["payable"]

    # All suffixes but one taken by pending bank transfers: the next one gets that one...
    now = timezone.now()
    taken = {first["payable"], second["payable"]}
    free = 50_000 + 777
    TopUp.objects.bulk_create(
        TopUp(
            user=buyer.user,
            provider="manual",
            amount=50_000,
            payable=50_000 + suffix,
            expires_at=now + timedelta(hours=1),
        )
        for suffix in range(1, 1000)
        if 50_000 + suffix not in taken and 50_000 + suffix != free
    )
    status, third = post("/api/v1/topups", {"amount": 50_000, "provider": "manual"}, buyer.key)
    assert (status, third["payable"]) == (201, free)
    # ...then there is none: a clear refusal, nothing created.
    count = TopUp.objects.count()
    status, refused = post("/api/v1/topups", {"amount": 50_000, "provider": "manual"}, buyer.key)
    assert status == 400
    assert refused["error"] == {
        "code": "invalid_request",
        "message": "Too many transfers of this amount are waiting; "
        "choose a slightly different one.",
    }
    assert TopUp.objects.count() == count
    # A top-up no longer pending frees its suffix (paid, failed or expired alike).
    assert topup_fail(topup_id=first["id"])
    status, fourth = post("/api/v1/topups", {"amount": 50_000, "provider": "manual"}, buyer.key)
    assert (status, fourth["payable"]) == (201, first["payable"])


def test_the_topup_limits_hold_at_their_edges() -> None:
    buyer = make_buyer()
    for amount in (10_000, 10_000_000):
        status, body = post("/api/v1/topups", {"amount": amount, "provider": "manual"}, buyer.key)
        assert (status, body.get("amount")) == (201, amount), body


WHOLE = "amount must be a whole number of rupiah."
LIMITS = "A top-up is Rp 10,000 to Rp 10,000,000."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"amount": 9_999, "provider": "manual"}, LIMITS),
        ({"amount": 10_000_001, "provider": "manual"}, LIMITS),
        ({"amount": 0, "provider": "manual"}, LIMITS),
        ({"amount": -50_000, "provider": "manual"}, LIMITS),
        ({"amount": "50000", "provider": "manual"}, WHOLE),
        ({"amount": 50_000.5, "provider": "manual"}, WHOLE),
        ({"amount": 50_000.0, "provider": "manual"}, WHOLE),
        ({"amount": True, "provider": "manual"}, WHOLE),
        ({"amount": None, "provider": "manual"}, WHOLE),
        ({"provider": "manual"}, WHOLE),
        ({"amount": 50_000, "provider": "paypal"}, "provider must be one of manual."),
        ({"amount": 50_000, "provider": "midtrans"}, "provider must be one of manual."),
        ({"amount": 50_000, "provider": ["manual"]}, "provider must be one of manual."),
        ({"amount": 50_000}, "provider must be one of manual."),
    ],
)
def test_a_bad_topup_request_is_a_400_that_says_why(body: dict, message: str) -> None:
    buyer = make_buyer()

    status, answer = post("/api/v1/topups", body, buyer.key)

    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_request"
    assert answer["error"]["message"] == message
    assert not TopUp.objects.exists()


def test_the_limits_in_the_message_follow_the_settings(settings: Any) -> None:
    settings.TOPUP_MIN, settings.TOPUP_MAX = 25_000, 2_500_000
    buyer = make_buyer()

    status, answer = post("/api/v1/topups", {"amount": 20_000, "provider": "manual"}, buyer.key)

    assert status == 400
    assert answer["error"]["message"] == "A top-up is Rp 25,000 to Rp 2,500,000."
    assert answer["error"]["fields"] == {"amount": ["A top-up is Rp 25,000 to Rp 2,500,000."]}


def test_a_topup_body_that_is_not_an_object_is_a_400() -> None:
    buyer = make_buyer()
    status, answer = post("/api/v1/topups", [50_000, "manual"], buyer.key)
    assert (status, answer["error"]["code"]) == (400, "invalid_request")
    assert not TopUp.objects.exists()


@pytest.mark.parametrize("key", [None, "not-a-key"])
def test_topups_without_a_valid_key_are_a_401(key: str | None) -> None:
    status, answer = post("/api/v1/topups", {"amount": 50_000, "provider": "manual"}, key)
    assert (status, answer["error"]["code"]) == (401, "invalid_api_key")
    response = APIClient().get("/api/v1/topups", **({"HTTP_X_API_KEY": key} if key else {}))
    assert response.status_code == 401
    assert not TopUp.objects.exists()


# --- bank statements ----------------------------------------------------------------------


def test_a_pasted_statement_pays_the_topups_its_lines_match_in_each_banks_style() -> None:
    buyers = [make_buyer() for _ in range(3)]
    bca, mandiri, bri = (
        manual(buyers[0], 50_000),
        manual(buyers[1], 1_250_000),
        manual(buyers[2], 300_000),
    )
    statement = "\n".join(
        [
            "Tanggal  Keterangan                         Mutasi        Saldo",
            bca_line(bca.payable),
            "05/12 BIAYA ADM 10.000,00 DB",
            "",
            mandiri_line(mandiri.payable),
            bri_line(bri.payable),
        ]
    )

    confirmed = transfers_confirm(statement=statement)

    assert sorted(t.pk for t in confirmed) == sorted([bca.pk, mandiri.pk, bri.pk])
    for buyer, paid in zip(buyers, (bca, mandiri, bri), strict=True):
        paid.refresh_from_db()
        assert paid.status == TopUp.Status.PAID and paid.closed_at is not None
        assert wallet_balance(buyer.user) == paid.payable
        assert booked(f"topup:{paid.pk}") == 1
        assert legs(f"topup:{paid.pk}") == {
            f"wallet:{buyer.user.pk}": paid.payable,
            Kind.EXTERNAL: -paid.payable,
        }

    # The same statement pasted again (or a day later, overlapping): nothing more.
    transactions = LedgerTransaction.objects.count()
    assert transfers_confirm(statement=statement) == []
    assert LedgerTransaction.objects.count() == transactions
    assert [wallet_balance(b.user) for b in buyers] == [bca.payable, mandiri.payable, bri.payable]


def test_one_line_pasted_twice_in_one_statement_credits_once() -> None:
    buyer = make_buyer()
    pending = manual(buyer, 75_000)
    line = bca_line(pending.payable)

    confirmed = transfers_confirm(statement=f"{line}\n{line}")

    assert [t.pk for t in confirmed] == [pending.pk]
    assert wallet_balance(buyer.user) == pending.payable
    assert booked(f"topup:{pending.pk}") == 1


def test_a_line_that_matches_no_waiting_topup_changes_nothing() -> None:
    buyer = make_buyer()
    pending = manual(buyer, 200_000)
    now = timezone.now()
    # Same payable, but not a waiting bank transfer: a Midtrans one and a failed one.
    TopUp.objects.create(
        user=buyer.user,
        provider="midtrans",
        amount=400_000,
        payable=400_123,
        expires_at=now + timedelta(hours=1),
    )
    TopUp.objects.create(
        user=buyer.user,
        provider="manual",
        amount=400_000,
        payable=400_456,
        status=TopUp.Status.FAILED,
        expires_at=now + timedelta(hours=1),
    )
    statement = "\n".join(
        [
            bca_line(pending.amount),  # forgot the suffix
            mandiri_line(pending.payable + 1),
            bri_line(pending.payable - 1),
            bca_line(400_123),
            bca_line(400_456),
            "SALDO AWAL 0,00",
        ]
    )
    before = list(TopUp.objects.order_by("pk").values_list("pk", "status", "closed_at"))
    transactions = LedgerTransaction.objects.count()

    assert transfers_confirm(statement=statement) == []

    assert list(TopUp.objects.order_by("pk").values_list("pk", "status", "closed_at")) == before
    assert LedgerTransaction.objects.count() == transactions
    assert wallet_balance(buyer.user) == 0


def test_an_expired_topup_whose_transfer_arrives_late_is_still_paid() -> None:
    buyer = make_buyer()
    late = manual(buyer, 100_000)
    assert topups_expire(now=late.expires_at + timedelta(minutes=5)) == 1
    late.refresh_from_db()
    assert late.status == TopUp.Status.EXPIRED

    confirmed = transfers_confirm(statement=mandiri_line(late.payable))

    assert [t.pk for t in confirmed] == [late.pk]
    late.refresh_from_db()
    assert late.status == TopUp.Status.PAID
    assert wallet_balance(buyer.user) == late.payable
    assert booked(f"topup:{late.pk}") == 1
    assert transfers_confirm(statement=mandiri_line(late.payable)) == []
    assert wallet_balance(buyer.user) == late.payable


def test_a_reference_number_on_the_line_does_not_pay_another_buyers_topup() -> None:
    asking_95051, paying = make_buyer(), make_buyer()
    other = manual(asking_95051, 95_000)
    TopUp.objects.filter(pk=other.pk).update(payable=95_051)
    mine = manual(paying, 50_000)
    line = f"05/12 TRSF E-BANKING CR 0512/FTSCY/WS95051 {dotted(mine.payable)},00 BUDI SANTOSO"

    confirmed = transfers_confirm(statement=line)

    assert [t.pk for t in confirmed] == [mine.pk]
    assert wallet_balance(asking_95051.user) == 0


# --- paying, failing, expiring ------------------------------------------------------------


def test_topup_pay_credits_once_however_often_it_is_called() -> None:
    buyer = make_buyer()
    pending = manual(buyer, 100_000)

    assert topup_pay(topup_id=pending.pk) is True
    assert topup_pay(topup_id=pending.pk) is False

    assert wallet_balance(buyer.user) == pending.payable
    assert booked(f"topup:{pending.pk}") == 1
    assert topup_fail(topup_id=pending.pk) is False  # paid stays paid
    pending.refresh_from_db()
    assert pending.status == TopUp.Status.PAID


def test_a_failed_topup_is_never_paid() -> None:
    buyer = make_buyer()
    pending = manual(buyer, 100_000)

    assert topup_fail(topup_id=pending.pk, provider_status="deny") is True
    assert topup_pay(topup_id=pending.pk) is False
    assert transfers_confirm(statement=bca_line(pending.payable)) == []

    assert wallet_balance(buyer.user) == 0
    assert booked(f"topup:{pending.pk}") == 0


def test_topups_expire_expires_only_pending_topups_past_their_time() -> None:
    buyer = make_buyer()
    now = timezone.now()
    made = {name: manual(buyer, 100_000) for name in ("past", "edge", "future", "paid", "failed")}
    due = {"past": now - timedelta(minutes=1), "edge": now, "future": now + timedelta(minutes=1)}
    due |= {"paid": now - timedelta(hours=1), "failed": now - timedelta(hours=1)}
    for name, moment in due.items():
        TopUp.objects.filter(pk=made[name].pk).update(expires_at=moment)
    assert topup_pay(topup_id=made["paid"].pk)
    assert topup_fail(topup_id=made["failed"].pk)

    assert topups_expire(now=now) == 2

    rows = {name: TopUp.objects.get(pk=t.pk) for name, t in made.items()}
    assert {name: row.status for name, row in rows.items()} == {
        "past": "expired",
        "edge": "expired",
        "future": "pending",
        "paid": "paid",
        "failed": "failed",
    }
    assert rows["past"].closed_at == rows["edge"].closed_at == now
    assert topups_expire(now=now) == 0
    assert wallet_balance(buyer.user) == made["paid"].payable


# --- withdrawals over the API -------------------------------------------------------------


def test_a_reseller_withdraws_and_the_money_leaves_the_wallet_at_once() -> None:
    seller = reseller(balance=100_000)

    status, body = post("/api/v1/withdrawals", withdrawal_body(60_000), seller.key)

    assert status == 201, body
    assert body | {"id": 0, "created_at": ""} == {
        "id": 0,
        "amount": 60_000,
        "method": "bank",
        "account_name": "Budi Santoso",
        "account_number": "8720123456",
        "bank_or_wallet": "BCA",
        "status": "pending",
        "transfer_reference": None,
        "note": None,
        "created_at": "",
        "decided_at": None,
    }
    withdrawal = Withdrawal.objects.get(pk=body["id"])
    assert withdrawal.reseller == seller.user
    assert wallet_balance(seller.user) == 40_000
    assert platform(Kind.PAYOUTS_PENDING) == 60_000
    assert legs(f"withdrawal:{withdrawal.pk}") == {
        f"wallet:{seller.user.pk}": -60_000,
        Kind.PAYOUTS_PENDING: 60_000,
    }


def test_a_reseller_may_withdraw_the_smallest_amount_and_the_whole_balance() -> None:
    seller = reseller(balance=50_000)
    status, body = post(
        "/api/v1/withdrawals",
        withdrawal_body(50_000, method="ewallet", bank_or_wallet="DANA"),
        seller.key,
    )
    assert status == 201, body
    assert (body["method"], body["bank_or_wallet"]) == ("ewallet", "DANA")
    assert wallet_balance(seller.user) == 0
    assert platform(Kind.PAYOUTS_PENDING) == 50_000


MIN = "The smallest withdrawal is Rp 50,000."
NOT_WHOLE = "amount must be a whole number of rupiah."


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": 49_999}, MIN),
        ({"amount": 0}, NOT_WHOLE),
        ({"amount": -60_000}, NOT_WHOLE),
        ({"amount": "60000"}, NOT_WHOLE),
        ({"amount": 60_000.5}, NOT_WHOLE),
        ({"amount": True}, NOT_WHOLE),
        ({"amount": _MISSING}, NOT_WHOLE),
        ({"method": "paypal"}, "method must be one of bank, ewallet."),
        ({"method": "BANK"}, "method must be one of bank, ewallet."),
        ({"method": _MISSING}, "method must be one of bank, ewallet."),
        ({"account_name": _MISSING}, "account_name is required."),
        ({"account_name": "   "}, "account_name is required."),
        ({"account_name": "Budi\x00Santoso"}, "account_name is required."),
        ({"account_number": 8720123456}, "account_number is required."),
        ({"account_number": "1" * 41}, "account_number is at most 40 characters."),
        ({"bank_or_wallet": _MISSING}, "bank_or_wallet is required."),
    ],
)
def test_a_bad_withdrawal_request_is_a_400_and_moves_nothing(changes: dict, message: str) -> None:
    seller = reseller(balance=100_000)

    status, answer = post("/api/v1/withdrawals", withdrawal_body(**changes), seller.key)

    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_request"
    assert answer["error"]["message"] == message
    assert not Withdrawal.objects.exists()
    assert wallet_balance(seller.user) == 100_000
    assert platform(Kind.PAYOUTS_PENDING) == 0


def test_the_smallest_withdrawal_follows_the_setting(settings: Any) -> None:
    settings.WITHDRAWAL_MIN = 75_000
    seller = reseller(balance=100_000)
    status, answer = post("/api/v1/withdrawals", withdrawal_body(60_000), seller.key)
    assert (status, answer["error"]["message"]) == (400, "The smallest withdrawal is Rp 75,000.")


@pytest.mark.parametrize("balance", [100_000, 0])
def test_withdrawing_more_than_the_balance_is_a_402_and_moves_nothing(balance: int) -> None:
    seller = reseller(balance=balance)

    status, answer = post("/api/v1/withdrawals", withdrawal_body(100_001), seller.key)

    assert status == 402, answer
    assert answer["error"] == {
        "code": "insufficient_balance",
        "message": "Your balance is below Rp 100,001: withdraw at most what it holds.",
    }
    assert not Withdrawal.objects.exists()
    assert not LedgerTransaction.objects.filter(reference__startswith="withdrawal:").exists()
    assert wallet_balance(seller.user) == balance
    assert platform(Kind.PAYOUTS_PENDING) == 0


def test_a_buyer_who_is_not_a_reseller_may_not_withdraw() -> None:
    buyer = make_buyer(balance=100_000)

    status, answer = post("/api/v1/withdrawals", withdrawal_body(60_000), buyer.key)

    assert status == 403, answer
    assert answer["error"]["code"] == "forbidden"
    assert not Withdrawal.objects.exists()
    assert wallet_balance(buyer.user) == 100_000
    assert get("/api/v1/withdrawals", buyer.key) == (200, {"results": [], "next": None})


def test_withdrawals_need_a_key() -> None:
    status, answer = post("/api/v1/withdrawals", withdrawal_body(60_000), None)
    assert (status, answer["error"]["code"]) == (401, "invalid_api_key")
    assert APIClient().get("/api/v1/withdrawals").status_code == 401


def test_a_reseller_lists_their_own_withdrawals_only_newest_first() -> None:
    mine, theirs = reseller(balance=200_000), reseller(balance=200_000)
    first = post("/api/v1/withdrawals", withdrawal_body(50_000), mine.key)[1]
    post("/api/v1/withdrawals", withdrawal_body(70_000), theirs.key)
    second = post("/api/v1/withdrawals", withdrawal_body(80_000), mine.key)[1]

    status, listed = get("/api/v1/withdrawals", mine.key)

    assert status == 200
    assert listed == {"results": [second, first], "next": None}
    assert [w["amount"] for w in get("/api/v1/withdrawals", theirs.key)[1]["results"]] == [70_000]


# --- staff pay or reject ------------------------------------------------------------------


def test_a_withdrawal_is_paid_once_and_the_reseller_is_told(
    django_capture_on_commit_callbacks: Any, mailoutbox: list
) -> None:
    seller = reseller(balance=100_000)
    waiting = withdraw(seller, 60_000)

    with django_capture_on_commit_callbacks(execute=True):
        assert withdrawal_pay(withdrawal_id=waiting.pk, transfer_reference=" BCA 0512-7781 ")
    with django_capture_on_commit_callbacks(execute=True):
        assert not withdrawal_pay(withdrawal_id=waiting.pk, transfer_reference="again")
        assert not withdrawal_reject(withdrawal_id=waiting.pk, note="too late")

    waiting.refresh_from_db()
    assert (waiting.status, waiting.transfer_reference) == ("paid", "BCA 0512-7781")
    assert waiting.decided_at is not None and waiting.note == ""
    assert booked(f"withdrawal:{waiting.pk}:paid") == 1
    assert booked(f"withdrawal:{waiting.pk}:returned") == 0
    assert legs(f"withdrawal:{waiting.pk}:paid") == {
        Kind.PAYOUTS_PENDING: -60_000,
        Kind.EXTERNAL: 60_000,
    }
    assert platform(Kind.PAYOUTS_PENDING) == 0
    assert wallet_balance(seller.user) == 40_000
    assert len(mailoutbox) == 1
    (email,) = mailoutbox
    assert email.to == [seller.user.email]
    assert email.subject == "ZeroTP: your withdrawal of Rp 60,000 is paid"
    assert "Rp 60,000" in email.body and "BCA 0512-7781" in email.body
    assert "8720123456" in email.body


def test_a_rejected_withdrawal_gives_the_money_back_once(
    django_capture_on_commit_callbacks: Any, mailoutbox: list
) -> None:
    seller = reseller(balance=100_000)
    waiting = withdraw(seller, 60_000)
    assert wallet_balance(seller.user) == 40_000

    with django_capture_on_commit_callbacks(execute=True):
        assert withdrawal_reject(withdrawal_id=waiting.pk, note="The account name does not match.")
    with django_capture_on_commit_callbacks(execute=True):
        assert not withdrawal_reject(withdrawal_id=waiting.pk, note="twice")
        assert not withdrawal_pay(withdrawal_id=waiting.pk, transfer_reference="BCA 1")

    waiting.refresh_from_db()
    assert (waiting.status, waiting.note) == ("rejected", "The account name does not match.")
    assert waiting.transfer_reference == ""
    assert wallet_balance(seller.user) == 100_000
    assert platform(Kind.PAYOUTS_PENDING) == 0
    assert booked(f"withdrawal:{waiting.pk}:returned") == 1
    assert booked(f"withdrawal:{waiting.pk}:paid") == 0
    assert legs(f"withdrawal:{waiting.pk}:returned") == {
        Kind.PAYOUTS_PENDING: -60_000,
        f"wallet:{seller.user.pk}": 60_000,
    }
    assert [m.subject for m in mailoutbox] == ["ZeroTP: your withdrawal of Rp 60,000 was declined"]
    assert "The account name does not match." in mailoutbox[0].body


def test_paying_needs_the_transfers_reference() -> None:
    seller = reseller(balance=100_000)
    waiting = withdraw(seller, 60_000)

    with pytest.raises(errors.InvalidRequest, match="reference is required"):
        withdrawal_pay(withdrawal_id=waiting.pk, transfer_reference="   ")

    waiting.refresh_from_db()
    assert waiting.status == Withdrawal.Status.PENDING
    assert platform(Kind.PAYOUTS_PENDING) == 60_000


def test_no_email_when_the_payment_is_rolled_back(
    django_capture_on_commit_callbacks: Any, mailoutbox: list
) -> None:
    seller = reseller(balance=100_000)
    waiting = withdraw(seller, 60_000)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            assert withdrawal_pay(withdrawal_id=waiting.pk, transfer_reference="BCA 9")
            raise RuntimeError("the admin's request failed after the payment")

    assert callbacks == [] and mailoutbox == []
    waiting.refresh_from_db()
    assert waiting.status == Withdrawal.Status.PENDING
    assert booked(f"withdrawal:{waiting.pk}:paid") == 0


# --- races (PostgreSQL) -------------------------------------------------------------------

CONFIRM_TRIALS = 5


@races
def test_ten_threads_confirming_one_topup_credit_it_once() -> None:
    outcomes: Counter[str] = Counter()
    for trial in range(CONFIRM_TRIALS):
        buyer = make_buyer()
        pending = manual(buyer, 100_000)
        statement = f"{bca_line(pending.payable)}\n{mandiri_line(pending.payable)}"

        def pay(topup_id: int = pending.pk) -> bool:
            return topup_pay(topup_id=topup_id)

        def confirm(statement: str = statement) -> list[TopUp]:
            return transfers_confirm(statement=statement)

        # Staff and a payment provider at once, or ten staff pasting the same statement.
        calls: list[Callable[[], Any]] = [pay] * 5 + [confirm] * 5 if trial % 2 else [confirm] * 10
        random.shuffle(calls)
        results = run_at_once([jittered(c) for c in calls])

        assert not [r for r in results if isinstance(r, BaseException)], results
        won = [r for r in results if r is True or (isinstance(r, list) and r)]
        assert len(won) == 1, results
        outcomes["topup_pay" if won[0] is True else "transfers_confirm"] += 1
        assert [t.pk for r in results if isinstance(r, list) for t in r] in ([], [pending.pk])
        assert wallet_balance(buyer.user) == pending.payable
        assert booked(f"topup:{pending.pk}") == 1
        assert TopUp.objects.get(pk=pending.pk).status == TopUp.Status.PAID

    print(f"confirm races won by: {dict(outcomes)}")


class FirstPickCollides:
    """Stands in for `random` in billing/topups.py: each thread's first pick waits until
    all ten have read the suffixes taken, then takes the lowest free one, the same for all;
    picks after that are random. Only the unique constraint and the retry keep them apart."""

    def __init__(self, threads: int) -> None:
        self.together = threading.Barrier(threads)
        self.first = threading.local()
        self.picks = 0

    def choice(self, free: list[int]) -> int:
        self.picks += 1
        if getattr(self.first, "done", False):
            return random.choice(free)
        self.first.done = True
        self.together.wait(timeout=30)
        return free[0]


@races
def test_ten_concurrent_topups_of_one_amount_all_get_distinct_payables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    picker = FirstPickCollides(10)
    monkeypatch.setattr(topups_module, "random", picker)
    buyers = [make_buyer() for _ in range(10)]

    results = run_at_once(
        [lambda b=b: topup_create(user=b.user, amount=80_000, provider="manual") for b in buyers]
    )

    assert all(isinstance(r, TopUp) for r in results), results
    payables = [t.payable for t in results]
    assert len(set(payables)) == 10
    assert all(80_001 <= p <= 80_999 for p in payables)
    assert 80_001 in payables  # the one that won the first pick
    assert picker.picks >= 19  # nine lost the first pick and tried again
    assert sorted(
        TopUp.objects.filter(status="pending").values_list("payable", flat=True)
    ) == sorted(payables)


ROUNDS = 3
PRICE = 10_000
START = 100_000
WITHDRAWAL = 50_000


@races
def test_withdrawals_racing_orders_never_overdraw_and_book_each_success_once(
    settings: Any,
) -> None:
    settings.MAX_ACTIVE_ORDERS = 100
    app = ApplicationFactory(prices={"normal": PRICE})
    ModemFactory.create_batch(8 * ROUNDS, reseller=make_agent().user)
    withdrawn = ordered = 0
    outcomes: Counter[str] = Counter()

    for _ in range(ROUNDS):
        seller = reseller(balance=START)  # sells numbers and buys them too

        def withdrawal(seller: Buyer = seller) -> tuple[str, int, dict]:
            return (
                "withdrawal",
                *post("/api/v1/withdrawals", withdrawal_body(WITHDRAWAL), seller.key),
            )

        def order(seller: Buyer = seller) -> tuple[str, int, dict]:
            return ("order", *post("/api/v1/orders", {"application_id": app.pk}, seller.key))

        # 3 x 50.000 + 8 x 10.000 = 230.000 asked of 100.000.
        calls: list[Callable[[], Any]] = [withdrawal] * 3 + [order] * 8
        random.shuffle(calls)
        results = run_at_once([jittered(c) for c in calls])

        assert not [r for r in results if isinstance(r, BaseException)], results
        assert {(kind, status) for kind, status, _ in results} <= {
            ("withdrawal", 201),
            ("withdrawal", 402),
            ("order", 201),
            ("order", 402),
        }, results
        assert all(
            body["error"]["code"] == "insufficient_balance"
            for _, status, body in results
            if status == 402
        )
        won = Counter(kind for kind, status, _ in results if status == 201)
        refused = Counter(kind for kind, status, _ in results if status == 402)
        outcomes[f"{won['withdrawal']} withdrawals + {won['order']} orders"] += 1
        balance = wallet_balance(seller.user)
        assert balance == START - WITHDRAWAL * won["withdrawal"] - PRICE * won["order"] >= 0
        # A refusal means the money was not there when it was asked (it only went down).
        if refused["withdrawal"]:
            assert balance < WITHDRAWAL
        if refused["order"]:
            assert balance < PRICE

        withdrawals = Withdrawal.objects.filter(reseller=seller.user)
        assert withdrawals.count() == won["withdrawal"]
        assert sorted(w["id"] for k, s, w in results if (k, s) == ("withdrawal", 201)) == sorted(
            withdrawals.values_list("pk", flat=True)
        )
        for pk in withdrawals.values_list("pk", flat=True):
            assert booked(f"withdrawal:{pk}") == 1
        orders = Order.objects.filter(buyer=seller.user)
        assert orders.count() == won["order"]
        for pk in orders.values_list("pk", flat=True):
            assert booked(f"order:{pk}:hold") == 1
        withdrawn += WITHDRAWAL * won["withdrawal"]
        ordered += PRICE * won["order"]
        assert platform(Kind.PAYOUTS_PENDING) == withdrawn
        assert platform(Kind.ESCROW) == ordered

    print(f"withdrawals racing orders, rounds ending: {dict(outcomes)}")


DECIDE_TRIALS = 5


@races
def test_ten_staff_clicks_on_one_withdrawal_decide_it_once(mailoutbox: list) -> None:
    outcomes: Counter[str] = Counter()
    for trial in range(DECIDE_TRIALS):
        seller = reseller(balance=60_000)
        waiting = withdraw(seller, 60_000)

        def pay(pk: int = waiting.pk) -> tuple[str, bool]:
            return "paid", withdrawal_pay(withdrawal_id=pk, transfer_reference="BCA 0512-1")

        def reject(pk: int = waiting.pk) -> tuple[str, bool]:
            return "rejected", withdrawal_reject(withdrawal_id=pk, note="duplicate")

        calls: list[Callable[[], Any]] = [pay] * 5 + [reject] * 5
        random.shuffle(calls)
        results = run_at_once([jittered(c) for c in calls])

        assert not [r for r in results if isinstance(r, BaseException)], results
        winners = [kind for kind, did in results if did]
        assert len(winners) == 1, results
        (winner,) = winners
        outcomes[winner] += 1
        assert Withdrawal.objects.get(pk=waiting.pk).status == winner
        paid = booked(f"withdrawal:{waiting.pk}:paid")
        returned = booked(f"withdrawal:{waiting.pk}:returned")
        assert (paid, returned) == ((1, 0) if winner == "paid" else (0, 1))
        assert wallet_balance(seller.user) == (0 if winner == "paid" else 60_000)
        assert platform(Kind.PAYOUTS_PENDING) == 0
        assert len(mailoutbox) == trial + 1  # one email per withdrawal, from the winner

    print(f"pay/reject races won by: {dict(outcomes)}")


@pytest.mark.parametrize(
    ("line", "amounts"),
    [
        ("05/12 TRSF E-BANKING CR 0512/FTSCY/WS95051 50.336,00 BUDI SANTOSO", [50_336]),
        ("Setoran Rp 50.336,00.", [50_336]),  # the sentence's full stop is no decimal
        ("TRSF 50.336,00 CR 1.234.567,89", [50_336, 1_234_567]),  # the amount before the saldo
        ("05/12 BIAYA ADM 15.000,00 DB", []),  # a debit pays no top-up
        ("1250347", [1_250_347]),
    ],
)
def test_the_amounts_of_a_statement_line(line: str, amounts: list[int]) -> None:
    assert line_amounts(line) == amounts


def test_an_expired_transfers_amount_is_not_given_to_a_new_top_up() -> None:
    """Its money may still come: for a week, a new top-up of the same amount asks for
    another suffix, so the late transfer pays the right buyer."""
    first = make_buyer()
    expired = topup_create(user=first.user, amount=20_000, provider="manual")
    TopUp.objects.filter(pk=expired.pk).update(status=TopUp.Status.EXPIRED)
    for _ in range(30):
        again = topup_create(user=make_buyer().user, amount=20_000, provider="manual")
        assert again.payable != expired.payable
