"""`Idempotency-Key` on POST /api/v1/orders: the same key and body replay the first 201
and charge once; another body is a 409; a failure leaves nothing; keys last 24 hours and
belong to one account."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import LedgerTransaction
from billing.services import topup, wallet_balance
from modems.models import Modem
from orders.models import Application, IdempotencyKey, Order
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_buyer

ORDERS = "/api/v1/orders"
PRICE = 3500


def post_order(client: APIClient, buyer: Buyer, body: dict[str, Any], key: str | None) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        ORDERS,
        data=json.dumps(body),
        content_type="application/json",
        **buyer.headers,
        **headers,
    )


def holds() -> int:
    return LedgerTransaction.objects.filter(kind="hold").count()


@pytest.fixture
def app(db: None) -> Application:
    return ApplicationFactory(prices={"normal": PRICE, "promo": 2800})


@pytest.fixture
def modems(agent: Agent) -> list[Modem]:
    return [ModemFactory(reseller=agent.user) for _ in range(3)]


def test_same_key_and_body_twice_replays_the_first_answer_and_charges_once(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    body = {"application_id": app.pk, "operator": "normal", "custom_user_id": "u1"}

    first = post_order(client, buyer, body, "key-1")
    second = post_order(client, buyer, body, "key-1")

    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1
    assert holds() == 1
    assert wallet_balance(buyer.user) == 100_000 - PRICE


def test_without_a_key_every_request_is_a_new_order(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    first = post_order(client, buyer, {"application_id": app.pk}, None)
    second = post_order(client, buyer, {"application_id": app.pk}, None)

    assert first.json()["order_id"] != second.json()["order_id"]
    assert Order.objects.count() == 2
    assert wallet_balance(buyer.user) == 100_000 - 2 * PRICE


def test_operator_omitted_and_normal_are_the_same_body(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    first = post_order(client, buyer, {"application_id": app.pk}, "key-2")
    second = post_order(client, buyer, {"application_id": app.pk, "operator": "normal"}, "key-2")

    assert second.status_code == 201, second.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_same_key_with_another_body_is_a_conflict(
    client: APIClient, buyer: Buyer, app: Application, agent: Agent, modems: list[Modem]
) -> None:
    ModemFactory(reseller=agent.user, mapping="promo")
    first = post_order(client, buyer, {"application_id": app.pk}, "key-3")
    assert first.status_code == 201

    conflicts = [
        post_order(client, buyer, {"application_id": app.pk, "operator": "promo"}, "key-3"),
        post_order(client, buyer, {"application_id": app.pk, "custom_user_id": "x"}, "key-3"),
        post_order(client, buyer, {"application_id": ApplicationFactory().pk}, "key-3"),
    ]

    for response in conflicts:
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Order.objects.count() == 1
    assert wallet_balance(buyer.user) == 100_000 - PRICE


def test_the_replay_is_the_first_answer_even_after_the_order_changed(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    first = post_order(client, buyer, {"application_id": app.pk}, "key-4")
    cancel = client.post(f"{ORDERS}/{first.json()['order_id']}/cancel", **buyer.headers)
    assert cancel.status_code == 200

    replay = post_order(client, buyer, {"application_id": app.pk}, "key-4")

    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.json()["status"] == "pending"
    assert Order.objects.count() == 1
    assert wallet_balance(buyer.user) == 100_000


def test_a_failed_first_request_leaves_nothing_and_the_key_works_after_a_top_up(
    client: APIClient, app: Application, modems: list[Modem]
) -> None:
    poor = make_buyer(balance=1000)
    body = {"application_id": app.pk}

    failed = post_order(client, poor, body, "key-5")
    assert failed.status_code == 402
    assert failed.json()["error"]["code"] == "insufficient_balance"
    assert not IdempotencyKey.objects.exists()
    assert not Order.objects.exists()
    assert wallet_balance(poor.user) == 1000

    topup(user=poor.user, amount=5000)
    retried = post_order(client, poor, body, "key-5")

    assert retried.status_code == 201, retried.content
    assert not retried.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1
    assert wallet_balance(poor.user) == 6000 - PRICE


def test_a_failed_first_request_does_not_pin_its_body_to_the_key(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    # No promo modem: out of stock. The client fixes the request and reuses the key.
    failed = post_order(client, buyer, {"application_id": app.pk, "operator": "promo"}, "key-6")
    assert failed.status_code == 409
    assert failed.json()["error"]["code"] == "out_of_stock"

    fixed = post_order(client, buyer, {"application_id": app.pk, "operator": "normal"}, "key-6")

    assert fixed.status_code == 201, fixed.content
    assert fixed.json()["operator"] == "normal"
    assert Order.objects.count() == 1


def test_a_validation_error_leaves_nothing_behind(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    bad = post_order(client, buyer, {"application_id": app.pk, "operator": "gold"}, "key-7")
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()

    good = post_order(client, buyer, {"application_id": app.pk}, "key-7")

    assert good.status_code == 201, good.content
    assert not good.has_header("Idempotent-Replayed")


def test_different_buyers_may_use_the_same_key_independently(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    other = make_buyer(balance=100_000)
    body = {"application_id": app.pk}

    mine = post_order(client, buyer, body, "shared-key")
    theirs = post_order(client, other, body, "shared-key")

    assert mine.status_code == theirs.status_code == 201
    assert not theirs.has_header("Idempotent-Replayed")
    assert mine.json()["order_id"] != theirs.json()["order_id"]
    assert Order.objects.get(pk=theirs.json()["order_id"]).buyer == other.user
    assert wallet_balance(buyer.user) == wallet_balance(other.user) == 100_000 - PRICE


def test_another_buyer_with_the_same_key_and_another_body_is_no_conflict(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    other = make_buyer(balance=100_000)
    post_order(client, buyer, {"application_id": app.pk}, "shared")

    response = post_order(
        client, other, {"application_id": app.pk, "custom_user_id": "z"}, "shared"
    )

    assert response.status_code == 201, response.content


def test_a_key_of_255_characters_is_accepted(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    response = post_order(client, buyer, {"application_id": app.pk}, "k" * 255)

    assert response.status_code == 201, response.content


def test_a_key_over_255_characters_is_refused(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    response = post_order(client, buyer, {"application_id": app.pk}, "k" * 256)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert not Order.objects.exists()
    assert wallet_balance(buyer.user) == 100_000


def test_a_key_older_than_24_hours_is_forgotten(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    body = {"application_id": app.pk}
    first = post_order(client, buyer, body, "old-key")
    IdempotencyKey.objects.filter(key="old-key").update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )

    second = post_order(client, buyer, body, "old-key")

    assert second.status_code == 201, second.content
    assert not second.has_header("Idempotent-Replayed")
    assert second.json()["order_id"] != first.json()["order_id"]
    assert Order.objects.count() == 2
    assert wallet_balance(buyer.user) == 100_000 - 2 * PRICE

    third = post_order(client, buyer, body, "old-key")
    assert third.json() == second.json()
    assert third["Idempotent-Replayed"] == "true"


def test_a_key_just_under_24_hours_old_still_replays(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    body = {"application_id": app.pk}
    first = post_order(client, buyer, body, "day-old-key")
    IdempotencyKey.objects.filter(key="day-old-key").update(
        created_at=timezone.now() - timedelta(hours=23, minutes=59)
    )

    second = post_order(client, buyer, body, "day-old-key")

    assert second.json() == first.json()
    assert Order.objects.count() == 1


def test_a_replay_needs_no_stock_and_no_balance(
    client: APIClient, app: Application, agent: Agent
) -> None:
    ModemFactory(reseller=agent.user)
    exact = make_buyer(balance=PRICE)
    body = {"application_id": app.pk}
    first = post_order(client, exact, body, "key-8")
    assert wallet_balance(exact.user) == 0

    replay = post_order(client, exact, body, "key-8")

    assert replay.status_code == 201, replay.content
    assert replay.json() == first.json()


@override_settings(MAX_ACTIVE_ORDERS=1)
def test_a_replay_is_answered_even_at_the_active_order_limit(
    client: APIClient, buyer: Buyer, app: Application, modems: list[Modem]
) -> None:
    body = {"application_id": app.pk}
    first = post_order(client, buyer, body, "key-9")
    assert first.status_code == 201
    limited = post_order(client, buyer, body, "key-10")
    assert limited.status_code == 429

    replay = post_order(client, buyer, body, "key-9")

    assert replay.status_code == 201, replay.content
    assert replay.json() == first.json()
