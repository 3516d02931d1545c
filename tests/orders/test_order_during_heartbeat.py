"""An order placed while a heartbeat holds the free modems (PostgreSQL, real threads).

A heartbeat marks a reseller's whole batch online in one UPDATE, which row-locks every
modem in it until it commits. Found by the scale-out test: the order's pick skips locked
modems, so while the only free modems were in a running heartbeat, orders were refused
`out_of_stock` although the catalogue showed them in stock."""

import threading
import time

import pytest
from django.db import connection, transaction

from modems.services import HeartbeatItem, modems_heartbeat
from orders.models import Order, OrderStatus
from orders.services import order_cancel, order_create
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer

pytestmark = [
    pytest.mark.postgres(why="row locks taken by a heartbeat exist"),
    pytest.mark.django_db(transaction=True),
]

PRICE = 3000
HELD_SECONDS = 0.2  # a heartbeat of 1,000 modems holds them for about 15 ms


def test_an_order_placed_while_a_heartbeat_holds_every_free_modem_waits_and_gets_one() -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    modems = ModemFactory.create_batch(3, reseller=agent.user)
    buyer = make_buyer(balance=PRICE)
    locked, release = threading.Event(), threading.Event()

    def heartbeat_held_open() -> None:
        try:
            with transaction.atomic():
                items = [HeartbeatItem(m.uid, 70, True) for m in modems]
                modems_heartbeat(reseller=agent.user, items=items)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    beat = threading.Thread(target=heartbeat_held_open)
    beat.start()
    try:
        assert locked.wait(timeout=10)
        threading.Timer(HELD_SECONDS, release.set).start()
        created = order_create(buyer=buyer.user, application_id=app.pk)
    finally:
        release.set()
        beat.join(timeout=10)

    order = Order.objects.get()
    assert created.order.pk == order.pk
    assert order.status == OrderStatus.PENDING
    assert order.modem_id in {m.pk for m in modems}


def test_while_it_waits_the_buyers_wallet_stays_free_for_their_other_orders() -> None:
    """The pauses are taken outside the order's transaction: the buyer's cancel of another
    order, which refunds through the same wallet, does not queue behind them."""
    app = ApplicationFactory(prices={"normal": PRICE, "promo": PRICE})
    agent = make_agent()
    held = ModemFactory.create_batch(3, reseller=agent.user)
    ModemFactory(reseller=make_agent().user, mapping="promo")  # in no heartbeat
    buyer = make_buyer(balance=100_000)
    other = order_create(buyer=buyer.user, application_id=app.pk, operator="promo").order
    locked, release, ordered = threading.Event(), threading.Event(), threading.Event()

    def heartbeat_held_open() -> None:
        try:
            with transaction.atomic():
                modems_heartbeat(
                    reseller=agent.user, items=[HeartbeatItem(m.uid, 70, True) for m in held]
                )
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    def order_waiting() -> None:
        try:
            order_create(buyer=buyer.user, application_id=app.pk)
            ordered.set()
        finally:
            connection.close()

    beat, waiting = (
        threading.Thread(target=heartbeat_held_open),
        threading.Thread(target=order_waiting),
    )
    beat.start()
    try:
        assert locked.wait(timeout=10)
        threading.Timer(0.4, release.set).start()
        waiting.start()
        time.sleep(0.1)  # the order is pausing by now
        started = time.monotonic()
        order_cancel(buyer=buyer.user, order_id=other.pk)
        cancel_seconds = time.monotonic() - started
        assert not ordered.is_set()  # the order was still waiting for a modem meanwhile
    finally:
        release.set()
        beat.join(timeout=10)
        waiting.join(timeout=10)

    assert cancel_seconds < 0.2
    assert ordered.is_set()
    assert Order.objects.get(pk=other.pk).status == OrderStatus.CANCELLED
