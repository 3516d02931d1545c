"""How often and how fast codes arrive (orders/statements/deliverability.py): the hourly
counts a trigger keeps as orders leave pending, the windows read from them, and where the
figures show (the services list, getPrices)."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from modems.models import Modem
from orders.models import Application, DeliveryCount, NumberRecord, Order, OrderStatus
from orders.services import order_cancel, order_create, orders_expire, sms_receive
from orders.statements import deliverability
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer

pytestmark = pytest.mark.django_db

# An hour's middle, so that "10 minutes ago" and "23 hours ago" stay in their hours.
NOW = timezone.now().replace(minute=30, second=0, microsecond=0)
RECORD_FIELDS = (
    "phone_number",
    "application_id",
    "delivered",
    "failed",
    "failed_in_a_row",
    "last_failed_at",
)


@pytest.fixture(autouse=True)
def small_sample(settings: Any) -> None:
    settings.DELIVERABILITY_MIN_ORDERS = 2


class World:
    def __init__(self) -> None:
        self.agent = make_agent()
        self.buyer = make_buyer()
        self.app = ApplicationFactory(prices={"normal": 1000, "promo": 800})

    def placed(self, ago: timedelta, operator: str = "normal") -> Order:
        """A pending order placed `ago` before NOW, on a modem of its own."""
        created = NOW - ago
        return Order.objects.create(
            buyer=self.buyer.user,
            application=self.app,
            operator=operator,
            modem=ModemFactory(reseller=self.agent.user, mapping=operator),
            reseller=self.agent.user,
            phone_number=f"62899{Order.objects.count():07d}",
            price=1000,
            created_at=created,
            expires_at=created + timedelta(minutes=20),
        )


def decide(order: Order, status: str, seconds_to_sms: int | None = None) -> None:
    """Leave pending as the services do: one UPDATE of the status (and, for a delivered
    order, the time of its first SMS)."""
    changes: dict[str, Any] = {"status": status}
    if seconds_to_sms is not None:
        changes["completed_at"] = order.created_at + timedelta(seconds=seconds_to_sms)
    assert Order.objects.filter(pk=order.pk).update(**changes) == 1


def windows(app: Application, operator: str = "normal", now: datetime = NOW) -> dict:
    found = deliverability.figures_now(now).get((app.pk, operator))
    assert found is not None
    return {name: window.as_json() for name, window in found.items()}


def test_orders_completed_cancelled_and_expired_count_in_the_hour_they_were_placed() -> None:
    world = World()
    decide(world.placed(timedelta(minutes=10)), OrderStatus.COMPLETED, 35)
    decide(world.placed(timedelta(hours=23)), OrderStatus.COMPLETED, 70)  # first hour of 24
    decide(world.placed(timedelta(hours=2)), OrderStatus.EXPIRED)
    decide(world.placed(timedelta(hours=24)), OrderStatus.CANCELLED)  # the hour before: 7d
    decide(world.placed(timedelta(days=6, hours=23)), OrderStatus.EXPIRED)  # first hour of 7d
    decide(world.placed(timedelta(days=7)), OrderStatus.COMPLETED, 20)  # out of both
    world.placed(timedelta(minutes=5))  # still pending: undecided, not counted

    figures = windows(world.app)

    # Median and p90 read linearly inside the buckets of time (30-45 s and 60-90 s).
    assert figures["24h"] == {
        "orders": 3,
        "success_rate": 0.667,
        "median_seconds_to_sms": 45,
        "p90_seconds_to_sms": 84,
    }
    assert figures["7d"] == {
        "orders": 5,
        "success_rate": 0.4,
        "median_seconds_to_sms": 45,
        "p90_seconds_to_sms": 84,
    }


def test_the_windows_move_with_the_clock() -> None:
    world = World()
    decide(world.placed(timedelta(minutes=10)), OrderStatus.COMPLETED, 35)
    decide(world.placed(timedelta(minutes=20)), OrderStatus.CANCELLED)

    assert windows(world.app, now=NOW + timedelta(hours=23))["24h"]["orders"] == 2
    assert windows(world.app, now=NOW + timedelta(hours=24))["24h"]["orders"] == 0
    assert windows(world.app, now=NOW + timedelta(hours=24))["7d"]["orders"] == 2
    assert deliverability.figures_now(NOW + timedelta(days=7)) == {}


def test_counts_no_window_reads_are_pruned() -> None:
    world = World()
    for days in (1, 7, 9):
        decide(world.placed(timedelta(days=days)), OrderStatus.EXPIRED)
    assert deliverability.prune(NOW) == 1  # 9 days: past the week and a day of grace
    assert windows(world.app)["7d"]["orders"] == 1
    assert DeliveryCount.objects.count() == 2


def test_a_figure_is_null_below_the_minimum_sample(settings: Any) -> None:
    settings.DELIVERABILITY_MIN_ORDERS = 3
    world = World()
    decide(world.placed(timedelta(minutes=10)), OrderStatus.COMPLETED, 12)
    decide(world.placed(timedelta(minutes=11)), OrderStatus.COMPLETED, 14)
    decide(world.placed(timedelta(minutes=12)), OrderStatus.EXPIRED)

    day = windows(world.app)["24h"]
    assert (day["orders"], day["success_rate"]) == (3, 0.667)
    assert day["median_seconds_to_sms"] is None  # two delivered orders only


def test_pools_count_apart_and_a_change_between_decided_statuses_counts_nothing() -> None:
    world = World()
    promo = world.placed(timedelta(minutes=10), operator="promo")
    decide(promo, OrderStatus.COMPLETED, 8)
    decide(promo, OrderStatus.FINISHED)
    decide(world.placed(timedelta(minutes=10)), OrderStatus.CANCELLED)
    decide(world.placed(timedelta(minutes=10)), OrderStatus.CANCELLED)

    assert windows(world.app, "promo")["24h"]["orders"] == 1
    assert windows(world.app, "normal")["24h"]["success_rate"] == 0.0


def test_the_services_record_each_order_once_and_a_recount_agrees(db: None) -> None:
    """Through the real paths: an SMS, a cancel, the expiry job."""
    agent = make_agent()
    buyer = make_buyer(balance=10_000)
    app = ApplicationFactory(prices={"normal": 1000})
    ModemFactory.create_batch(3, reseller=agent.user)

    def order() -> Order:
        return order_create(buyer=buyer.user, application_id=app.pk).order

    delivered = order()
    sms_receive(reseller=agent.user, uid=delivered.modem.uid, sender="X", text="Kode 482910")
    sms_receive(reseller=agent.user, uid=delivered.modem.uid, sender="X", text="Kode 482911")
    order_cancel(buyer=buyer.user, order_id=order().pk)
    expired = order()
    Order.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert orders_expire() == 1

    now = timezone.now()
    day = windows(app, now=now)["24h"]
    assert (day["orders"], day["success_rate"]) == (3, 0.333)
    kept = sorted(DeliveryCount.objects.values_list("application_id", "bucket", "orders"))
    with connection.cursor() as cursor:
        for statement in deliverability.recount(connection.vendor):
            cursor.execute(statement)
    deliverability.figures_now(now)  # adds any changes in
    assert sorted(DeliveryCount.objects.values_list("application_id", "bucket", "orders")) == kept
    assert sum(orders for _, _, orders in kept) == 3


def test_the_services_list_shows_each_pools_figures(client: APIClient) -> None:
    world = World()
    for seconds in (15, 25, 50):
        decide(world.placed(timedelta(minutes=10)), OrderStatus.COMPLETED, seconds)
    decide(world.placed(timedelta(minutes=10)), OrderStatus.EXPIRED)

    services = client.get("/api/v1/services").json()
    entry = next(item for item in services if item["id"] == world.app.pk)
    normal, promo = entry["operators"]["normal"], entry["operators"]["promo"]
    assert normal["success_rate"] == 0.75
    assert normal["median_seconds_to_sms"] == 25
    assert normal["deliverability"]["7d"]["orders"] == 4
    assert promo["success_rate"] is None
    assert promo["deliverability"]["24h"] == {
        "orders": 0,
        "success_rate": None,
        "median_seconds_to_sms": None,
        "p90_seconds_to_sms": None,
    }


def test_get_prices_adds_the_pools_rate_once_it_is_known(settings: Any) -> None:
    world = World()
    world.app.service_code = "wa"
    world.app.save()
    for status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        decide(world.placed(timedelta(minutes=10), operator="promo"), status)
    decide(world.placed(timedelta(minutes=10), operator="promo"), OrderStatus.COMPLETED, 9)
    Modem.objects.update(online=False)  # no stock: getPrices quotes the cheapest pool
    key = make_buyer().key

    answer = APIClient().get("/stubs/handler_api.php", {"api_key": key, "action": "getPrices"})

    (prices,) = answer.json().values()
    assert prices["wa"] == {"cost": 800, "count": 0, "rate": 33.3}


# --- Each number's record per application ----------------------------------------------------


def test_a_numbers_record_counts_its_outcomes_and_its_failures_in_a_row() -> None:
    world = World()
    modem = ModemFactory(reseller=world.agent.user, phone_number="628990000001")
    other = ApplicationFactory(prices={"normal": 1000})

    def outcome(status: str, app: Application = world.app) -> Order:
        created = timezone.now() - timedelta(minutes=5)
        order = Order.objects.create(
            buyer=world.buyer.user,
            application=app,
            operator="normal",
            modem=modem,
            reseller=world.agent.user,
            phone_number=modem.phone_number,
            price=1000,
            created_at=created,
            expires_at=created + timedelta(minutes=20),
        )
        changes: dict[str, Any] = {"status": status, "closed_at": timezone.now()}
        if status == OrderStatus.COMPLETED:
            changes = {"status": status, "completed_at": created + timedelta(seconds=30)}
        Order.objects.filter(pk=order.pk).update(**changes)
        return Order.objects.get(pk=order.pk)

    def record(app: Application = world.app) -> tuple[int, int, int]:
        found = NumberRecord.objects.get(phone_number=modem.phone_number, application_id=app.pk)
        return found.delivered, found.failed, found.failed_in_a_row

    outcome(OrderStatus.CANCELLED)
    outcome(OrderStatus.EXPIRED)
    assert record() == (0, 2, 2)
    outcome(OrderStatus.COMPLETED)
    assert record() == (1, 2, 0)  # a code ends the run of failures
    last = outcome(OrderStatus.EXPIRED, other)  # another application: a record of its own
    assert record() == (1, 2, 0)
    assert record(other) == (0, 1, 1)
    assert NumberRecord.objects.get(application_id=other.pk).last_failed_at == last.closed_at

    kept = sorted(NumberRecord.objects.values_list(*RECORD_FIELDS))
    with connection.cursor() as cursor:
        for statement in deliverability.recount(connection.vendor):
            cursor.execute(statement)
    assert sorted(NumberRecord.objects.values_list(*RECORD_FIELDS)) == kept
