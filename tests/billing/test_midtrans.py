"""Top-ups through Midtrans, against a fake Midtrans on 127.0.0.1 (tests/billing/
midtrans_fake.py): the Snap page is opened with the server key, and a notification credits
the payable exactly once, only when signed and only as the status API confirms it."""

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from billing.models import LedgerTransaction, TopUp
from billing.services import wallet_balance
from billing.topups import topups_expire
from tests.billing.midtrans_fake import (
    FakeMidtrans,
    basic_auth,
    closed_url,
    notification,
    notify,
    running_midtrans,
)
from tests.concurrency import run_at_once
from tests.factories import Buyer, make_buyer

AMOUNT = 50_000
OUTAGES = {"500 with a page": "500-html", "closed": "closed", "500 with Midtrans's JSON": "500"}


@pytest.fixture
def midtrans(settings: Any) -> Iterator[FakeMidtrans]:
    with running_midtrans() as fake:
        settings.PAYMENT_PROVIDERS = ["manual", "midtrans"]
        settings.MIDTRANS_SERVER_KEY = fake.server_key
        settings.MIDTRANS_SNAP_URL = fake.url
        settings.MIDTRANS_API_URL = fake.url
        yield fake


def start(client: APIClient, buyer: Buyer, amount: int = AMOUNT) -> tuple[TopUp, str]:
    """A midtrans top-up started over the API: the top-up and its Midtrans order_id."""
    response = client.post(
        "/api/v1/topups", {"amount": amount, "provider": "midtrans"}, format="json", **buyer.headers
    )
    assert response.status_code == 201, response.json()
    topup = TopUp.objects.get(pk=response.json()["id"])
    return topup, f"topup-{topup.pk}"


def credits(topup: TopUp) -> int:
    return LedgerTransaction.objects.filter(reference=f"topup:{topup.pk}").count()


def status_of(topup: TopUp) -> str:
    topup.refresh_from_db()
    return topup.status


@pytest.mark.django_db
def test_a_buyer_starts_a_midtrans_topup_and_gets_the_snap_page(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    response = client.post(
        "/api/v1/topups", {"amount": AMOUNT, "provider": "midtrans"}, format="json", **buyer.headers
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    order_id = f"topup-{body['id']}"
    assert body["status"] == "pending"
    assert body["provider"] == "midtrans"
    assert body["amount"] == body["payable"] == AMOUNT
    assert body["redirect_url"] == midtrans.redirect_url(order_id)
    assert body["bank_accounts"] == []
    [call] = midtrans.snap_calls
    assert call.authorized
    assert call.headers["authorization"] == basic_auth(midtrans.server_key)
    assert call.body["transaction_details"] == {"order_id": order_id, "gross_amount": AMOUNT}
    assert TopUp.objects.get(pk=body["id"]).redirect_url == body["redirect_url"]
    assert wallet_balance(buyer.user) == 100_000
    assert not LedgerTransaction.objects.filter(reference=f"topup:{body['id']}").exists()


@pytest.mark.django_db
def test_an_amount_below_the_minimum_is_refused_before_midtrans_is_asked(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, settings: Any
) -> None:
    response = client.post(
        "/api/v1/topups",
        {"amount": settings.TOPUP_MIN - 1, "provider": "midtrans"},
        format="json",
        **buyer.headers,
    )

    assert response.status_code == 400
    assert midtrans.snap_calls == []
    assert not TopUp.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["500", "closed", "wrong server key"])
def test_snap_failing_answers_502_and_fails_the_topup(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, settings: Any, failure: str
) -> None:
    if failure == "wrong server key":
        settings.MIDTRANS_SERVER_KEY = "SB-Mid-server-not-ours"
    else:
        midtrans.snap_failure = failure

    response = client.post(
        "/api/v1/topups", {"amount": AMOUNT, "provider": "midtrans"}, format="json", **buyer.headers
    )

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "payment_unavailable"
    assert len(midtrans.snap_calls) == 1
    topup = TopUp.objects.get(user=buyer.user)
    assert topup.status == TopUp.Status.FAILED
    assert topup.closed_at is not None
    assert topup.redirect_url == ""
    assert credits(topup) == 0
    assert wallet_balance(buyer.user) == 100_000


@pytest.mark.django_db
def test_a_settlement_credits_the_payable_once_however_often_it_is_notified(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "settlement")
    body = midtrans.notification(order_id, "settlement")

    assert notify(client, body) == (200, {"status": "paid"})
    assert notify(client, body) == (200, {"status": "unchanged"})
    assert notify(client, body) == (200, {"status": "unchanged"})

    assert wallet_balance(buyer.user) == 100_000 + topup.payable
    assert credits(topup) == 1
    assert LedgerTransaction.objects.get(reference=f"topup:{topup.pk}").kind == "topup"
    topup.refresh_from_db()
    assert (topup.status, topup.provider_status) == (TopUp.Status.PAID, "settlement")
    assert topup.closed_at is not None
    calls = midtrans.status_calls(order_id)
    assert [c.path for c in calls] == [f"/v2/{order_id}/status"] * 3
    assert all(c.authorized for c in calls)


@pytest.mark.postgres
def test_ten_concurrent_notifications_over_http_credit_once(
    live_server: Any, midtrans: FakeMidtrans
) -> None:
    buyer = make_buyer()
    created = requests.post(
        f"{live_server.url}/api/v1/topups",
        json={"amount": AMOUNT, "provider": "midtrans"},
        headers={"X-API-KEY": buyer.key},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    topup = TopUp.objects.get(pk=created.json()["id"])
    order_id = f"topup-{topup.pk}"
    midtrans.set(order_id, "settlement")
    midtrans.hold_status_answers(10)  # all ten past the signature, then all at once
    body = midtrans.notification(order_id, "settlement")

    results = run_at_once([lambda: notify(live_server.url, body)] * 10)

    assert not midtrans.status_barrier_broken
    assert Counter(status for status, _ in results) == {200: 10}, results
    assert Counter(answer["status"] for _, answer in results) == {"paid": 1, "unchanged": 9}
    assert credits(topup) == 1
    assert wallet_balance(buyer.user) == AMOUNT
    assert status_of(topup) == TopUp.Status.PAID


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forgery",
    ["signed with another key", "no signature_key", "order_id changed after signing"],
)
def test_a_forged_notification_is_refused_before_midtrans_is_asked(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, forgery: str
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "settlement")
    if forgery == "signed with another key":
        body = notification(order_id, "settlement", server_key="SB-Mid-server-guessed")
    elif forgery == "no signature_key":
        body = midtrans.notification(order_id, "settlement")
        del body["signature_key"]
    else:
        body = {**midtrans.notification("topup-0", "settlement"), "order_id": order_id}

    status, answer = notify(client, body)

    assert status == 401
    assert answer["error"]["code"] == "forbidden"
    assert midtrans.status_calls() == []
    assert credits(topup) == 0
    assert status_of(topup) == TopUp.Status.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("paid", ["10000.00", "49999.00", "50000.50", "500000.00"])
def test_a_settlement_of_another_amount_credits_nothing(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, paid: str
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "settlement", gross_amount=paid)

    status, answer = notify(client, midtrans.notification(order_id, "settlement"))

    assert (status, answer) == (200, {"status": "ignored"})
    assert len(midtrans.status_calls(order_id)) == 1
    assert credits(topup) == 0
    assert wallet_balance(buyer.user) == 100_000
    assert status_of(topup) == TopUp.Status.PENDING


@pytest.mark.django_db
def test_a_status_answer_for_another_order_credits_nothing(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "settlement", answer_order_id="topup-0")

    assert notify(client, midtrans.notification(order_id, "settlement")) == (
        200,
        {"status": "ignored"},
    )
    assert credits(topup) == 0


@pytest.mark.django_db
def test_the_status_api_decides_when_the_notification_says_more(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    topup, order_id = start(client, buyer)
    body = midtrans.notification(order_id, "settlement")
    midtrans.set(order_id, "pending")

    assert notify(client, body) == (200, {"status": "unchanged"})
    assert credits(topup) == 0
    assert status_of(topup) == TopUp.Status.PENDING

    midtrans.set(order_id, "settlement")
    assert notify(client, body) == (200, {"status": "paid"})
    assert notify(client, body) == (200, {"status": "unchanged"})
    assert credits(topup) == 1
    assert wallet_balance(buyer.user) == 100_000 + AMOUNT


@pytest.mark.django_db
@pytest.mark.parametrize("order_id", ["topup-987654321", "order-17", "topup-", "topup-1e3"])
def test_a_signed_notification_for_an_unknown_order_is_ignored(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, order_id: str
) -> None:
    topup, ours = start(client, buyer)
    midtrans.set(ours, "settlement")

    status, answer = notify(client, notification(order_id, "settlement"))

    assert (status, answer) == (200, {"status": "ignored"})
    assert midtrans.status_calls() == []
    assert credits(topup) == 0


@pytest.mark.django_db
def test_a_midtrans_notification_cannot_pay_a_bank_transfer_topup(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    response = client.post(
        "/api/v1/topups", {"amount": AMOUNT, "provider": "manual"}, format="json", **buyer.headers
    )
    assert response.status_code == 201
    transfer = TopUp.objects.get(pk=response.json()["id"])

    body = notification(f"topup-{transfer.pk}", "settlement", gross_amount=f"{transfer.payable}.00")
    assert notify(client, body) == (200, {"status": "ignored"})

    assert midtrans.status_calls() == []
    assert credits(transfer) == 0
    assert status_of(transfer) == TopUp.Status.PENDING


@pytest.mark.django_db
def test_pending_then_settlement_credits_once(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    topup, order_id = start(client, buyer)

    midtrans.set(order_id, "pending")
    assert notify(client, midtrans.notification(order_id, "pending")) == (
        200,
        {"status": "unchanged"},
    )
    assert status_of(topup) == TopUp.Status.PENDING
    midtrans.set(order_id, "settlement")
    assert notify(client, midtrans.notification(order_id, "settlement")) == (
        200,
        {"status": "paid"},
    )
    assert notify(client, midtrans.notification(order_id, "pending")) == (
        200,
        {"status": "unchanged"},
    )

    assert credits(topup) == 1
    assert wallet_balance(buyer.user) == 100_000 + AMOUNT


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fraud_status", "done", "paid"),
    [("accept", "paid", True), ("challenge", "unchanged", False), ("deny", "unchanged", False)],
)
def test_a_card_capture_pays_only_when_fraud_detection_accepts_it(
    client: APIClient,
    buyer: Buyer,
    midtrans: FakeMidtrans,
    fraud_status: str,
    done: str,
    paid: bool,
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "capture", fraud_status=fraud_status, payment_type="credit_card")

    body = midtrans.notification(
        order_id, "capture", fraud_status=fraud_status, payment_type="credit_card"
    )
    assert notify(client, body) == (200, {"status": done})

    assert credits(topup) == int(paid)
    assert wallet_balance(buyer.user) == 100_000 + AMOUNT * paid
    assert status_of(topup) == (TopUp.Status.PAID if paid else TopUp.Status.PENDING)


@pytest.mark.django_db
@pytest.mark.parametrize("ending", ["expire", "cancel", "deny", "failure"])
def test_an_ended_transaction_fails_the_topup_and_a_later_settlement_does_not_pay_it(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, ending: str
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, ending)

    assert notify(client, midtrans.notification(order_id, ending)) == (200, {"status": "failed"})
    topup.refresh_from_db()
    assert (topup.status, topup.provider_status) == (TopUp.Status.FAILED, ending)
    assert topup.closed_at is not None
    assert notify(client, midtrans.notification(order_id, ending)) == (
        200,
        {"status": "unchanged"},
    )

    # What the code does today: a failed top-up stays failed, whatever Midtrans says later.
    midtrans.set(order_id, "settlement")
    assert notify(client, midtrans.notification(order_id, "settlement")) == (
        200,
        {"status": "unchanged"},
    )
    assert credits(topup) == 0
    assert wallet_balance(buyer.user) == 100_000
    assert status_of(topup) == TopUp.Status.FAILED


@pytest.mark.django_db
def test_a_settlement_after_our_own_expiry_still_pays(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    topup, order_id = start(client, buyer)
    assert topups_expire(now=topup.expires_at) == 1
    midtrans.set(order_id, "expire")
    assert notify(client, midtrans.notification(order_id, "expire")) == (
        200,
        {"status": "unchanged"},
    )
    assert status_of(topup) == TopUp.Status.EXPIRED

    midtrans.set(order_id, "settlement")
    assert notify(client, midtrans.notification(order_id, "settlement")) == (
        200,
        {"status": "paid"},
    )
    assert credits(topup) == 1
    assert wallet_balance(buyer.user) == 100_000 + AMOUNT


@pytest.mark.django_db
@pytest.mark.parametrize("later", ["refund", "partial_refund", "chargeback"])
def test_a_refund_after_the_credit_changes_nothing_here(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, later: str
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "settlement")
    assert notify(client, midtrans.notification(order_id, "settlement"))[1] == {"status": "paid"}

    # What the code does today: the balance keeps the credit (staff must act by hand).
    midtrans.set(order_id, later)
    assert notify(client, midtrans.notification(order_id, later)) == (200, {"status": "unchanged"})
    assert credits(topup) == 1
    assert wallet_balance(buyer.user) == 100_000 + AMOUNT
    assert status_of(topup) == TopUp.Status.PAID


@pytest.mark.django_db
@pytest.mark.parametrize(
    "outage",
    [
        "500 with a page",
        "closed",
        "refused",
        "500 with Midtrans's JSON",
    ],
)
def test_the_status_api_down_answers_503_and_the_retry_credits_once(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans, settings: Any, outage: str
) -> None:
    topup, order_id = start(client, buyer)
    midtrans.set(order_id, "settlement")
    body = midtrans.notification(order_id, "settlement")
    if outage == "refused":
        settings.MIDTRANS_API_URL = closed_url()
    else:
        midtrans.status_failure = OUTAGES[outage]

    status, answer = notify(client, body)

    assert status == 503, answer
    assert answer["error"]["code"] == "payment_unavailable"
    assert credits(topup) == 0
    assert status_of(topup) == TopUp.Status.PENDING

    settings.MIDTRANS_API_URL = midtrans.url
    midtrans.status_failure = None
    assert notify(client, body) == (200, {"status": "paid"})
    assert notify(client, body) == (200, {"status": "unchanged"})
    assert credits(topup) == 1
    assert wallet_balance(buyer.user) == 100_000 + AMOUNT


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'"settlement"', b"null", b"\xff\xfe{}", b'{"order_id": '],
)
def test_a_malformed_notification_is_refused_with_400(
    client: APIClient, midtrans: FakeMidtrans, raw: bytes
) -> None:
    status, answer = notify(client, raw)

    assert status == 400
    assert answer["error"]["code"] == "invalid_request"
    assert midtrans.received == []


def test_a_notification_must_be_posted(client: APIClient) -> None:
    assert client.get("/payments/midtrans/notification").status_code == 405


@pytest.mark.django_db
def test_the_topup_reads_paid_after_the_credit(
    client: APIClient, buyer: Buyer, midtrans: FakeMidtrans
) -> None:
    topup, order_id = start(client, buyer)
    before = client.get(f"/api/v1/topups/{topup.pk}", **buyer.headers).json()
    assert (before["status"], before["closed_at"]) == ("pending", None)
    midtrans.set(order_id, "settlement")

    assert notify(client, midtrans.notification(order_id, "settlement"))[0] == 200

    response = client.get(f"/api/v1/topups/{topup.pk}", **buyer.headers)
    assert response.status_code == 200
    after = response.json()
    assert after["status"] == "paid"
    assert after["closed_at"] is not None
    assert after["payable"] == AMOUNT
    assert after["redirect_url"] == midtrans.redirect_url(order_id)
    stranger = make_buyer()
    assert client.get(f"/api/v1/topups/{topup.pk}", **stranger.headers).status_code == 404
