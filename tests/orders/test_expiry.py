"""Expiry: the clock decides what the API shows; the scheduled job refunds pending orders
past `expires_at` exactly once and closes completed ones without moving money."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_q.models import Schedule
from rest_framework.test import APIClient

from billing.models import LedgerAccount, LedgerTransaction
from billing.services import wallet_balance
from modems.models import InboundSms, Modem
from orders.models import Application, Order, OrderStatus
from orders.services import orders_expire, sms_receive
from orders.tasks import expire_orders
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory

ORDERS = "/api/v1/orders"
PRICE = 3500


def post_order(client: APIClient, buyer: Buyer, app: Application) -> Any:
    return client.post(
        ORDERS,
        data=json.dumps({"application_id": app.pk}),
        content_type="application/json",
        **buyer.headers,
    )


def escrow() -> int:
    account = LedgerAccount.objects.filter(kind="escrow", user=None).first()
    return account.balance if account else 0


def move_past_expiry(order_id: int, seconds: int = 1) -> None:
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=seconds))


def money_snapshot(*users: Any) -> tuple:
    return (
        tuple(wallet_balance(u) for u in users),
        tuple(LedgerAccount.objects.order_by("pk").values_list("balance", flat=True)),
        LedgerTransaction.objects.count(),
    )


@pytest.fixture
def app(db: None) -> Application:
    return ApplicationFactory(prices={"normal": PRICE})


@pytest.fixture
def modem(agent: Agent) -> Modem:
    return ModemFactory(reseller=agent.user)


@pytest.fixture
def order(client: APIClient, buyer: Buyer, app: Application, modem: Modem) -> dict[str, Any]:
    response = post_order(client, buyer, app)
    assert response.status_code == 201, response.content
    return response.json()


def test_the_api_shows_expired_as_soon_as_expires_at_passes(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    move_past_expiry(order["order_id"])

    response = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "expired"
    # The job has not run: the row and the money are as they were.
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.PENDING
    assert wallet_balance(buyer.user) == 100_000 - PRICE


def test_an_order_at_its_last_second_still_shows_pending(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    Order.objects.filter(pk=order["order_id"]).update(
        expires_at=timezone.now() + timedelta(seconds=30)
    )

    response = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers)

    assert response.json()["status"] == "pending"


def test_the_list_and_its_filters_follow_the_clock(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    move_past_expiry(order["order_id"])

    listed = client.get(ORDERS, **buyer.headers).json()["results"]
    pending = client.get(f"{ORDERS}?status=pending", **buyer.headers).json()["results"]
    expired = client.get(f"{ORDERS}?status=expired", **buyer.headers).json()["results"]

    assert [o["status"] for o in listed] == ["expired"]
    assert pending == []
    assert [o["order_id"] for o in expired] == [order["order_id"]]


def test_the_job_expires_and_refunds_a_pending_order(buyer: Buyer, order: dict[str, Any]) -> None:
    move_past_expiry(order["order_id"])

    expire_orders()

    stored = Order.objects.get(pk=order["order_id"])
    assert stored.status == OrderStatus.EXPIRED
    assert stored.closed_at is not None
    assert wallet_balance(buyer.user) == 100_000
    assert escrow() == 0
    assert LedgerTransaction.objects.filter(
        reference=f"order:{order['order_id']}:release", kind="release"
    ).exists()


def test_running_the_job_twice_refunds_once(buyer: Buyer, order: dict[str, Any]) -> None:
    move_past_expiry(order["order_id"])

    expire_orders()
    expire_orders()

    assert wallet_balance(buyer.user) == 100_000
    assert escrow() == 0
    assert LedgerTransaction.objects.filter(kind="release").count() == 1


def test_orders_expire_uses_the_time_it_is_given(buyer: Buyer, order: dict[str, Any]) -> None:
    expires_at = Order.objects.get(pk=order["order_id"]).expires_at

    before = orders_expire(now=expires_at - timedelta(seconds=1))
    at = orders_expire(now=expires_at)
    again = orders_expire(now=expires_at + timedelta(hours=1))

    assert (before, at, again) == (0, 1, 0)
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.EXPIRED
    assert wallet_balance(buyer.user) == 100_000
    assert LedgerTransaction.objects.filter(kind="release").count() == 1


def test_the_job_leaves_orders_still_in_time_alone(buyer: Buyer, order: dict[str, Any]) -> None:
    assert expire_orders() == 0

    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.PENDING
    assert wallet_balance(buyer.user) == 100_000 - PRICE
    assert escrow() == PRICE


def test_the_expired_order_reads_the_same_before_and_after_the_job(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    move_past_expiry(order["order_id"])
    before = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers).json()

    expire_orders()

    after = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers).json()
    assert before == after
    assert after["status"] == "expired"


def test_a_cancelled_order_is_not_refunded_again_by_the_job(
    client: APIClient, buyer: Buyer, order: dict[str, Any]
) -> None:
    assert client.post(f"{ORDERS}/{order['order_id']}/cancel", **buyer.headers).status_code == 200
    move_past_expiry(order["order_id"])

    expire_orders()

    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.CANCELLED
    assert wallet_balance(buyer.user) == 100_000
    assert LedgerTransaction.objects.filter(kind="release").count() == 1


def test_a_completed_order_past_expires_at_shows_and_becomes_finished_with_no_money_moved(
    client: APIClient, buyer: Buyer, agent: Agent, modem: Modem, order: dict[str, Any]
) -> None:
    result = sms_receive(
        reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Your code is 123-456"
    )
    assert result.matched
    move_past_expiry(order["order_id"])
    money = money_snapshot(buyer.user, agent.user)

    shown = client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers).json()
    expire_orders()

    assert shown["status"] == "finished"
    assert shown["otp_code"] == "123456"
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.FINISHED
    assert money_snapshot(buyer.user, agent.user) == money
    assert not LedgerTransaction.objects.filter(kind="release").exists()


def test_a_completed_order_past_expires_at_is_listed_as_finished(
    client: APIClient, buyer: Buyer, agent: Agent, modem: Modem, order: dict[str, Any]
) -> None:
    assert sms_receive(
        reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Your code is 123-456"
    ).matched
    move_past_expiry(order["order_id"])

    completed = client.get(f"{ORDERS}?status=completed", **buyer.headers).json()["results"]
    finished = client.get(f"{ORDERS}?status=finished", **buyer.headers).json()["results"]

    assert completed == []
    assert [(o["order_id"], o["status"]) for o in finished] == [(order["order_id"], "finished")]


def test_more_sms_after_expiry_do_not_reach_a_completed_order(
    agent: Agent, modem: Modem, order: dict[str, Any]
) -> None:
    assert sms_receive(
        reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Your code is 111111"
    ).matched
    move_past_expiry(order["order_id"])

    late = sms_receive(
        reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Your code is 222222"
    )

    assert not late.matched
    assert Order.objects.get(pk=order["order_id"]).otp_code == "111111"


def test_an_sms_after_expiry_does_not_match(
    buyer: Buyer, agent: Agent, modem: Modem, order: dict[str, Any]
) -> None:
    move_past_expiry(order["order_id"])
    money = money_snapshot(buyer.user, agent.user)

    result = sms_receive(
        reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Your code is 123-456"
    )

    assert result.as_dict() == {"matched": False, "order_id": None, "otp": None}
    assert InboundSms.objects.filter(modem=modem).count() == 1
    assert money_snapshot(buyer.user, agent.user) == money
    assert Order.objects.get(pk=order["order_id"]).otp_code is None
    expire_orders()
    assert Order.objects.get(pk=order["order_id"]).status == OrderStatus.EXPIRED
    assert wallet_balance(buyer.user) == 100_000
    assert wallet_balance(agent.user) == 0


def test_an_sms_after_expiry_through_the_agent_api_does_not_match(
    client: APIClient, agent: Agent, modem: Modem, order: dict[str, Any]
) -> None:
    move_past_expiry(order["order_id"])

    response = client.post(
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

    assert response.status_code == 200, response.content
    assert response.json() == {"matched": False, "order_id": None, "otp": None}


def test_the_modem_is_free_again_after_expiry(
    client: APIClient, buyer: Buyer, app: Application, order: dict[str, Any]
) -> None:
    assert post_order(client, buyer, app).json()["error"]["code"] == "out_of_stock"
    move_past_expiry(order["order_id"])
    expire_orders()

    again = post_order(client, buyer, app)

    assert again.status_code == 201, again.content
    assert again.json()["phone_number"] == order["phone_number"]
    assert again.json()["order_id"] != order["order_id"]


def test_the_expiry_schedule_runs_every_minute(db: None) -> None:
    schedule = Schedule.objects.get(func="orders.tasks.expire_orders")

    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == 1
    assert schedule.repeats < 0


def test_expire_orders_is_importable_by_the_schedules_dotted_path(db: None) -> None:
    from django.utils.module_loading import import_string

    assert import_string("orders.tasks.expire_orders") is expire_orders
