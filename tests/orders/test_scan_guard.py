"""SCAN_GUARD: a buyer whose recent orders almost never receive an SMS is paused (429),
as the best services do against number scanning."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from modems.models import Modem
from orders.models import Application, Order, OrderStatus
from tests.factories import ApplicationFactory, Buyer, ModemFactory, make_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def app() -> Application:
    return ApplicationFactory(prices={"normal": 1000})


@pytest.fixture
def modem() -> Modem:
    return ModemFactory(reseller=make_agent().user)


def history(
    buyer: Buyer, app: Application, modem: Modem, *statuses: str, hours_ago: int = 1
) -> None:
    created = timezone.now() - timedelta(hours=hours_ago)
    Order.objects.bulk_create(
        Order(
            buyer=buyer.user,
            application=app,
            operator="normal",
            modem=modem,
            reseller=modem.reseller,
            phone_number=f"62899{n:07d}",
            price=1000,
            status=status,
            created_at=created,
            expires_at=created + timedelta(minutes=20),
        )
        for n, status in enumerate(statuses)
    )


def order(client: APIClient, buyer: Buyer, app: Application) -> object:
    return client.post("/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers)


def test_twenty_unanswered_orders_pause_the_buyer(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem
) -> None:
    history(buyer, app, modem, *[OrderStatus.CANCELLED] * 12, *[OrderStatus.EXPIRED] * 8)

    answer = order(client, buyer, app)

    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "rate_limited"
    assert "20 of your last 20 orders received no SMS" in answer.json()["error"]["message"]
    assert int(answer["Retry-After"]) > 0
    assert Order.objects.filter(status=OrderStatus.PENDING).count() == 0


def test_one_answer_in_twenty_is_enough_to_keep_ordering(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem
) -> None:
    history(buyer, app, modem, OrderStatus.FINISHED, *[OrderStatus.CANCELLED] * 19)
    assert order(client, buyer, app).status_code == 201


def test_fewer_than_twenty_closed_orders_are_not_judged(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem
) -> None:
    history(buyer, app, modem, *[OrderStatus.CANCELLED] * 19)
    assert order(client, buyer, app).status_code == 201


def test_orders_older_than_a_day_are_forgotten(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem
) -> None:
    history(buyer, app, modem, *[OrderStatus.EXPIRED] * 30, hours_ago=25)
    assert order(client, buyer, app).status_code == 201


def test_only_the_most_recent_orders_count(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem
) -> None:
    history(buyer, app, modem, *[OrderStatus.FINISHED] * 20, hours_ago=3)
    history(buyer, app, modem, *[OrderStatus.CANCELLED] * 20, hours_ago=1)
    assert order(client, buyer, app).status_code == 429


def test_scan_guard_off_lets_everyone_order(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem, settings: object
) -> None:
    settings.SCAN_GUARD = False
    history(buyer, app, modem, *[OrderStatus.CANCELLED] * 40)
    assert order(client, buyer, app).status_code == 201


def test_the_limit_of_pending_orders_is_reported_first(
    client: APIClient, buyer: Buyer, app: Application, modem: Modem, settings: object
) -> None:
    settings.MAX_ACTIVE_ORDERS = 1
    history(buyer, app, modem, *[OrderStatus.CANCELLED] * 20)
    history(buyer, app, modem, OrderStatus.PENDING, hours_ago=0)
    assert order(client, buyer, app).json()["error"]["code"] == "too_many_active_orders"
