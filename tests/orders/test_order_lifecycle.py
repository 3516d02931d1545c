"""Reading orders (one, and the paginated list), cancel and finish, each on the buyer's
own orders only: another buyer's order is a 404, never a 403."""

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import LedgerAccount, LedgerTransaction
from billing.services import wallet_balance
from modems.models import Modem
from orders.models import Application, Order, OrderStatus
from orders.services import sms_receive
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_buyer

ORDERS = "/api/v1/orders"
PRICE = 3500


def post_order(client: APIClient, buyer: Buyer, app: Application, **body: Any) -> dict[str, Any]:
    response = client.post(
        ORDERS,
        data=json.dumps({"application_id": app.pk, **body}),
        content_type="application/json",
        **buyer.headers,
    )
    assert response.status_code == 201, response.content
    return response.json()


def escrow() -> int:
    account = LedgerAccount.objects.filter(kind="escrow", user=None).first()
    return account.balance if account else 0


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def sms_for(order: dict[str, Any], text: str = "Your WhatsApp code is 123-456") -> Any:
    modem = Modem.objects.get(phone_number=order["phone_number"])
    return sms_receive(reseller=modem.reseller, uid=modem.uid, sender="WhatsApp", text=text)


def cancel(client: APIClient, buyer: Buyer, order_id: int) -> Any:
    return client.post(f"{ORDERS}/{order_id}/cancel", **buyer.headers)


def finish(client: APIClient, buyer: Buyer, order_id: int) -> Any:
    return client.post(f"{ORDERS}/{order_id}/finish", **buyer.headers)


@pytest.fixture
def app(db: None) -> Application:
    return ApplicationFactory(prices={"normal": PRICE})


@pytest.fixture
def modem(agent: Agent) -> Modem:
    return ModemFactory(reseller=agent.user)


@pytest.fixture
def order(client: APIClient, buyer: Buyer, app: Application, modem: Modem) -> dict[str, Any]:
    return post_order(client, buyer, app)


# --- GET /api/v1/orders/{id} --------------------------------------------------------------


def test_reading_an_order_answers_what_create_answered(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    response = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers)

    assert response.status_code == 200
    assert response.json() == order


def test_reading_a_completed_order_shows_the_otp_and_messages(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    assert sms_for(order, "Your WhatsApp code is 111-222").matched
    assert sms_for(order, "Your WhatsApp code is 333444").matched

    body = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers).json()

    assert body["status"] == "completed"
    assert body["otp_code"] == "333444"
    assert body["sms_text"] == "Your WhatsApp code is 333444"
    assert [m["otp_code"] for m in body["messages"]] == ["111222", "333444"]
    first = body["messages"][0]
    assert set(first) == {"from", "text", "otp_code", "received_at"}
    assert first["from"] == "WhatsApp"
    assert first["text"] == "Your WhatsApp code is 111-222"
    assert first["received_at"].endswith("Z")


def test_another_buyers_order_is_not_found(
    client: APIClient, order: dict[str, Any], db: None
) -> None:
    stranger = make_buyer(balance=100_000)

    response = client.get(f"{ORDERS}/{order['order_id']}", **stranger.headers)

    assert_error(response, 404, "not_found")


def test_unknown_order_is_not_found(client: APIClient, buyer: Buyer) -> None:
    assert_error(client.get(f"{ORDERS}/987654321", **buyer.headers), 404, "not_found")


def test_another_buyers_order_looks_exactly_like_an_unknown_one(
    client: APIClient, order: dict[str, Any], db: None
) -> None:
    stranger = make_buyer(balance=100_000)
    unknown_id = order["order_id"] + 1000

    theirs = client.get(f"{ORDERS}/{order['order_id']}", **stranger.headers)
    unknown = client.get(f"{ORDERS}/{unknown_id}", **stranger.headers)

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["message"].replace(str(order["order_id"]), "ID") == (
        unknown.json()["error"]["message"].replace(str(unknown_id), "ID")
    )


def test_huge_order_id_is_not_found_not_a_server_error(client: APIClient, buyer: Buyer) -> None:
    response = client.get(f"{ORDERS}/99999999999999999999", **buyer.headers)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("action", ["cancel", "finish"])
def test_actions_on_a_huge_order_id_are_not_found(
    client: APIClient, buyer: Buyer, action: str
) -> None:
    response = client.post(f"{ORDERS}/99999999999999999999/{action}", **buyer.headers)

    assert_error(response, 404, "not_found")


def test_reading_an_order_needs_the_api_key(client: APIClient, order: dict[str, Any]) -> None:
    assert_error(client.get(f"{ORDERS}/{order['order_id']}"), 401, "invalid_api_key")


# --- GET /api/v1/orders -------------------------------------------------------------------


@pytest.fixture
def five_orders(client: APIClient, buyer: Buyer, app: Application, agent: Agent) -> list[int]:
    for _ in range(5):
        ModemFactory(reseller=agent.user)
    return [post_order(client, buyer, app)["order_id"] for _ in range(5)]


def test_list_is_newest_first_with_results_and_next(
    client: APIClient, buyer: Buyer, five_orders: list[int]
) -> None:
    response = client.get(ORDERS, **buyer.headers)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next"}
    assert body["next"] is None
    assert [o["order_id"] for o in body["results"]] == list(reversed(five_orders))
    assert body["results"][0] == client.get(f"{ORDERS}/{five_orders[-1]}", **buyer.headers).json()


def test_pagination_follows_next_until_null_and_sees_every_order_once(
    client: APIClient, buyer: Buyer, five_orders: list[int]
) -> None:
    seen: list[int] = []
    url: str | None = f"{ORDERS}?limit=2"
    pages = 0
    while url is not None:
        response = client.get(url, **buyer.headers)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) <= 2
        seen += [o["order_id"] for o in body["results"]]
        url = body["next"]
        pages += 1
        assert pages <= 5, "pagination never ends"
        if url is not None:
            assert parse_qs(urlparse(url).query).get("limit") == ["2"]

    assert pages == 3
    assert seen == list(reversed(five_orders))


def test_pagination_is_stable_when_orders_arrive_between_pages(
    client: APIClient, buyer: Buyer, app: Application, agent: Agent, five_orders: list[int]
) -> None:
    first = client.get(f"{ORDERS}?limit=2", **buyer.headers).json()
    ModemFactory(reseller=agent.user)
    post_order(client, buyer, app)

    second = client.get(first["next"], **buyer.headers).json()

    assert [o["order_id"] for o in second["results"]] == list(reversed(five_orders))[2:4]


def test_status_filter_shows_only_that_status(
    client: APIClient, buyer: Buyer, five_orders: list[int]
) -> None:
    assert cancel(client, buyer, five_orders[1]).status_code == 200
    assert cancel(client, buyer, five_orders[3]).status_code == 200

    pending = client.get(f"{ORDERS}?status=pending", **buyer.headers)
    cancelled = client.get(f"{ORDERS}?status=cancelled", **buyer.headers)

    assert pending.status_code == 200
    assert [o["order_id"] for o in pending.json()["results"]] == [
        five_orders[4],
        five_orders[2],
        five_orders[0],
    ]
    assert all(o["status"] == "pending" for o in pending.json()["results"])
    assert [o["order_id"] for o in cancelled.json()["results"]] == [five_orders[3], five_orders[1]]


def test_unknown_status_filter_is_400(client: APIClient, buyer: Buyer) -> None:
    response = client.get(f"{ORDERS}?status=bogus", **buyer.headers)

    assert_error(response, 400, "invalid_request")


def test_another_buyers_orders_never_appear_in_the_list(
    client: APIClient, buyer: Buyer, app: Application, agent: Agent, five_orders: list[int]
) -> None:
    stranger = make_buyer(balance=100_000)
    ModemFactory(reseller=agent.user)
    theirs = post_order(client, stranger, app)["order_id"]

    mine = client.get(f"{ORDERS}?limit=200", **buyer.headers).json()["results"]
    their_list = client.get(ORDERS, **stranger.headers).json()["results"]
    their_pending = client.get(f"{ORDERS}?status=pending", **stranger.headers).json()["results"]

    assert theirs not in [o["order_id"] for o in mine]
    assert [o["order_id"] for o in their_list] == [theirs]
    assert [o["order_id"] for o in their_pending] == [theirs]


def test_a_buyer_with_no_orders_gets_an_empty_list(client: APIClient, buyer: Buyer) -> None:
    response = client.get(ORDERS, **buyer.headers)

    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None}


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=0", "limit=-1", "limit=100000", "cursor=garbage", "cursor=", "status="],
)
def test_odd_list_parameters_never_give_a_server_error(
    client: APIClient, buyer: Buyer, five_orders: list[int], query: str
) -> None:
    response = client.get(f"{ORDERS}?{query}", **buyer.headers)

    assert response.status_code in (200, 400, 404), response.content
    body = response.json()
    if response.status_code == 200:
        assert set(body) == {"results", "next"}
    else:
        assert set(body) == {"error"}
        assert body["error"]["code"] in ("invalid_request", "not_found")


def test_limit_caps_the_page_size(client: APIClient, buyer: Buyer, five_orders: list[int]) -> None:
    body = client.get(f"{ORDERS}?limit=1", **buyer.headers).json()

    assert [o["order_id"] for o in body["results"]] == [five_orders[-1]]
    assert body["next"] is not None


def test_the_list_needs_the_api_key(client: APIClient, db: None) -> None:
    assert_error(client.get(ORDERS), 401, "invalid_api_key")


# --- cancel -------------------------------------------------------------------------------


def test_cancel_of_a_pending_order_refunds_the_full_price(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    assert wallet_balance(buyer.user) == 100_000 - PRICE
    assert escrow() == PRICE

    response = cancel(client, buyer, order["order_id"])

    assert response.status_code == 200, response.content
    assert response.json() == {**order, "status": "cancelled"}
    assert wallet_balance(buyer.user) == 100_000
    assert escrow() == 0
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.CANCELLED


def test_cancel_repeated_answers_200_and_refunds_once(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    first = cancel(client, buyer, order["order_id"])

    again = cancel(client, buyer, order["order_id"])

    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert wallet_balance(buyer.user) == 100_000
    assert escrow() == 0
    releases = LedgerTransaction.objects.filter(kind="release")
    assert [t.reference for t in releases] == [f"order:{order['order_id']}:release"]


def test_cancel_after_an_sms_is_refused(
    client: APIClient, buyer: Buyer, agent: Agent, order: dict[str, Any]
) -> None:
    assert sms_for(order).matched

    response = cancel(client, buyer, order["order_id"])

    assert_error(response, 409, "invalid_state")
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.COMPLETED
    assert wallet_balance(buyer.user) == 100_000 - PRICE
    assert wallet_balance(agent.user) == PRICE * 70 // 100
    assert not LedgerTransaction.objects.filter(kind="release").exists()


def test_cancel_after_an_sms_through_the_agent_api_is_refused(
    client: APIClient, buyer: Buyer, agent: Agent, order: dict[str, Any]
) -> None:
    modem = Modem.objects.get(phone_number=order["phone_number"])
    inbound = client.post(
        "/api/modem/inbound-sms",
        {
            "uid": modem.uid,
            "phone_number": modem.phone_number,
            "from": "WhatsApp",
            "text": "Your code is 123-456",
        },
        format="json",
        **agent.headers,
    )
    assert inbound.json() == {"matched": True, "order_id": order["order_id"], "otp": "123456"}

    assert_error(cancel(client, buyer, order["order_id"]), 409, "invalid_state")


def test_cancel_after_expires_at_passed_is_refused(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    Order.objects.filter(pk=order["order_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = cancel(client, buyer, order["order_id"])

    assert_error(response, 409, "invalid_state")
    # The expiry job, not the cancel, gives the money back.
    assert not LedgerTransaction.objects.filter(kind="release").exists()
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.PENDING


def test_cancel_of_another_buyers_order_is_not_found(
    client: APIClient, buyer: Buyer, order: dict[str, Any], db: None
) -> None:
    stranger = make_buyer(balance=100_000)

    response = cancel(client, stranger, order["order_id"])

    assert_error(response, 404, "not_found")
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.PENDING
    assert wallet_balance(buyer.user) == 100_000 - PRICE
    assert wallet_balance(stranger.user) == 100_000


def test_cancel_of_an_unknown_order_is_not_found(client: APIClient, buyer: Buyer) -> None:
    assert_error(cancel(client, buyer, 987654321), 404, "not_found")


def test_cancel_of_a_finished_order_is_refused(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    assert sms_for(order).matched
    assert finish(client, buyer, order["order_id"]).status_code == 200

    assert_error(cancel(client, buyer, order["order_id"]), 409, "invalid_state")


def test_cancel_needs_the_api_key(client: APIClient, order: dict[str, Any]) -> None:
    response = client.post(f"{ORDERS}/{order['order_id']}/cancel")

    assert_error(response, 401, "invalid_api_key")
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.PENDING


def test_a_cancelled_orders_number_is_free_again(
    client: APIClient, buyer: Buyer, app: Application, order: dict[str, Any]
) -> None:
    assert cancel(client, buyer, order["order_id"]).status_code == 200

    again = post_order(client, buyer, app)

    assert again["phone_number"] == order["phone_number"]


# --- finish -------------------------------------------------------------------------------


def test_finish_of_a_completed_order_closes_it(
    client: APIClient, buyer: Buyer, agent: Agent, order: dict[str, Any]
) -> None:
    assert sms_for(order).matched
    paid = wallet_balance(agent.user)

    response = finish(client, buyer, order["order_id"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "finished"
    assert body["otp_code"] == "123456"
    assert len(body["messages"]) == 1
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.FINISHED
    assert wallet_balance(agent.user) == paid
    assert wallet_balance(buyer.user) == 100_000 - PRICE


def test_finish_repeated_answers_200_unchanged(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    assert sms_for(order).matched
    first = finish(client, buyer, order["order_id"])

    again = finish(client, buyer, order["order_id"])

    assert again.status_code == 200, again.content
    assert again.json() == first.json()


def test_finish_of_a_pending_order_is_refused(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    response = finish(client, buyer, order["order_id"])

    assert_error(response, 409, "invalid_state")
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.PENDING


def test_finish_of_a_cancelled_order_is_refused(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    assert cancel(client, buyer, order["order_id"]).status_code == 200

    response = finish(client, buyer, order["order_id"])

    assert_error(response, 409, "invalid_state")
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.CANCELLED


def test_finish_of_an_expired_order_is_refused(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    Order.objects.filter(pk=order["order_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert_error(finish(client, buyer, order["order_id"]), 409, "invalid_state")


def test_finish_of_another_buyers_order_is_not_found(
    client: APIClient, order: dict[str, Any], db: None
) -> None:
    assert sms_for(order).matched
    stranger = make_buyer(balance=100_000)

    response = finish(client, stranger, order["order_id"])

    assert_error(response, 404, "not_found")
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.COMPLETED


def test_a_finished_number_is_not_offered_for_that_application_again(
    client: APIClient, buyer: Buyer, app: Application, order: dict[str, Any]
) -> None:
    assert sms_for(order).matched
    assert finish(client, buyer, order["order_id"]).status_code == 200

    response = client.post(ORDERS, {"application_id": app.pk}, format="json", **buyer.headers)

    assert_error(response, 409, "out_of_stock")
