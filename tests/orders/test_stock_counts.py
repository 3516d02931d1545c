"""The stock's counts, kept by triggers (orders/statements/stock_counts.py): every write
that changes a modem or an order keeps them equal to a count from scratch (checked after
every step here, and after every test by conftest), and reading the stock reads only them.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string

from modems.models import Modem
from modems.services import HeartbeatItem, modems_heartbeat, modems_sync
from orders.models import Order, OrderStatus, StockCount, StockCountChange
from orders.services import order_cancel, order_create, order_finish, orders_expire, sms_receive
from orders.statements import stock_counts
from orders.statements.stock_counts import stock_differences
from tests.concurrency import run_at_once
from tests.conftest import ON_POSTGRES
from tests.factories import (
    ApplicationFactory,
    Buyer,
    ModemFactory,
    make_agent,
    make_buyer,
    offline_since,
)
from zerotp.errors import OutOfStock

pytestmark = pytest.mark.django_db

mark_offline = import_string("modems.tasks.mark_offline")


def stock(application_id: int, operator: str = "normal") -> int:
    assert stock_differences() == []
    return stock_counts.stock()(application_id, operator)


def test_the_check_finds_a_count_no_trigger_kept() -> None:
    ModemFactory(reseller=make_agent().user)
    assert stock_differences() == []
    missed = StockCountChange.objects.create(
        application_id=0, operator="normal", carrier="telkomsel", modems=4
    )

    assert stock_differences() == ["application 0, normal, telkomsel: kept 5, counted 1"]
    missed.delete()


def test_every_write_keeps_the_counts() -> None:
    agent = make_agent()
    app = ApplicationFactory(prices={"normal": 1000, "promo": 1000})
    buyer = make_buyer(balance=100_000)
    first = ModemFactory(reseller=agent.user, uid="COM1", phone_number="628110000001")
    second = ModemFactory(reseller=agent.user, uid="COM2", phone_number="628110000002")
    assert stock(app.pk) == 2

    served = order_create(buyer=buyer.user, application_id=app.pk).order
    assert stock(app.pk) == 1
    sms_receive(reseller=agent.user, uid=served.modem.uid, sender="X", text="Code 123456")
    assert stock(app.pk) == 1
    order_finish(buyer=buyer.user, order_id=served.pk)
    assert stock(app.pk) == 1  # a number serves an application once

    cancelled = order_create(buyer=buyer.user, application_id=app.pk).order
    assert stock(app.pk) == 0
    order_cancel(buyer=buyer.user, order_id=cancelled.pk)
    assert stock(app.pk) == 1

    expired = order_create(buyer=buyer.user, application_id=app.pk).order
    Order.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert orders_expire() == 1
    assert stock(app.pk) == 1

    # The modem that served moves the used number away, and gets a fresh one: free again.
    used = served.modem
    modems_sync(
        reseller=agent.user,
        items=[
            {"uid": used.uid, "phone_number": "628110000009", "mapping": "normal"},
            {"uid": "COM3", "phone_number": served.phone_number, "mapping": "promo"},
        ],
    )
    assert stock(app.pk) == 2
    assert stock(app.pk, "promo") == 0  # COM3 holds the used number (and no heartbeat yet)
    modems_heartbeat(reseller=agent.user, items=[HeartbeatItem("COM3", 60, True)])
    assert Modem.objects.get(uid="COM3").online
    assert stock(app.pk, "promo") == 0
    assert stock_counts.stock()(0, "promo") == 1  # orderable, blocked for the application

    Modem.objects.filter(pk=second.pk).update(disabled=True)  # as the admin does
    assert stock(app.pk) == 1
    modems_heartbeat(reseller=agent.user, items=[HeartbeatItem(first.uid, 60, False)])
    assert stock(app.pk) == 0  # can_order false

    Modem.objects.filter(pk=second.pk).update(
        disabled=False, last_heartbeat_at=offline_since(settings.MODEM_ONLINE_SECONDS + 1)
    )
    assert stock(app.pk) == 1  # silent, but not yet marked: see the test below
    assert mark_offline() >= 1
    assert stock(app.pk) == 0


def test_a_silent_modem_stays_in_the_stock_until_the_job_marks_it_offline() -> None:
    """The counts follow `online`; the pick checks the heartbeat's age itself, so an order
    in that minute is out of stock rather than handed a silent modem."""
    agent = make_agent()
    app = ApplicationFactory(prices={"normal": 1000})
    buyer = make_buyer(balance=10_000)
    modem = ModemFactory(reseller=agent.user)
    Modem.objects.filter(pk=modem.pk).update(
        last_heartbeat_at=offline_since(settings.MODEM_ONLINE_SECONDS + 1)
    )
    assert stock(app.pk) == 1
    with pytest.raises(Exception, match="available"):
        order_create(buyer=buyer.user, application_id=app.pk)

    mark_offline()
    assert stock(app.pk) == 0


def test_one_statement_changing_orders_that_block_one_modem_by_two_rules() -> None:
    """A cancelled order on the modem (its number since moved away) and a finished order
    of the modem's number, made open and used again in one UPDATE: the counts add the
    modem once."""
    agent = make_agent()
    app = ApplicationFactory(prices={"normal": 1000})
    buyer = make_buyer()
    modem = ModemFactory(reseller=agent.user, phone_number="628110000001")
    common = {
        "buyer": buyer.user,
        "application": app,
        "operator": "normal",
        "reseller": agent.user,
        "price": 1000,
        "expires_at": timezone.now() + timedelta(minutes=10),
    }
    on_modem = Order.objects.create(
        modem=modem, phone_number="628119990001", status=OrderStatus.CANCELLED, **common
    )
    of_number = Order.objects.create(
        modem=ModemFactory(reseller=agent.user),
        phone_number="628110000001",
        status=OrderStatus.CANCELLED,
        **common,
    )
    assert stock(app.pk) == 2

    changed = Order.objects.filter(pk__in=[on_modem.pk, of_number.pk])
    assert changed.update(status=OrderStatus.COMPLETED) == 2
    assert stock(app.pk) == 0  # the first modem by both rules, the second by its own order
    assert changed.update(status=OrderStatus.CANCELLED) == 2
    assert stock(app.pk) == 2
    changed.delete()
    assert stock(app.pk) == 2


def test_reading_the_stock_reads_only_the_counts() -> None:
    """One query (PostgreSQL: and one more that adds the triggers' changes into the counts),
    which reads neither the modems nor the orders."""
    agent = make_agent()
    for _ in range(3):
        ModemFactory(reseller=agent.user)
    with CaptureQueriesContext(connection) as queries:
        stock_counts.stock()
        stock_counts.stock("telkomsel")
    assert len(queries) == (4 if ON_POSTGRES else 2)
    for query in queries:
        assert StockCount._meta.db_table in query["sql"]
        for table in (Modem._meta.db_table, Order._meta.db_table):
            assert table not in query["sql"], query["sql"]
    assert StockCountChange.objects.count() == 0  # added in


def test_a_heartbeat_that_changes_nothing_counted_writes_nothing() -> None:
    agent = make_agent()
    for n in range(5):
        ModemFactory(reseller=agent.user, uid=f"COM{n}")
    stock_counts.stock()
    counts = list(StockCount.objects.order_by("pk").values_list("pk", "modems"))

    modems_heartbeat(
        reseller=agent.user, items=[HeartbeatItem(f"COM{n}", 50, True) for n in range(5)]
    )
    assert list(StockCount.objects.order_by("pk").values_list("pk", "modems")) == counts
    assert StockCountChange.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(MAX_ACTIVE_ORDERS=100)
def test_concurrent_orders_cancels_flips_and_reads_keep_the_counts_exact() -> None:
    """Eight buyers order and cancel on one pool while heartbeats take modems offline and
    back and readers add the changes in: no statement waits on another in a circle (each
    would surface as an error here), and the counts end equal to a count from scratch."""
    agent = make_agent()
    app = ApplicationFactory(prices={"normal": 1000})
    ModemFactory.create_batch(12, reseller=agent.user)
    uids = list(Modem.objects.values_list("uid", flat=True))
    buyers = [make_buyer(balance=100_000) for _ in range(8)]

    def buyer_loop(buyer: Buyer) -> int:
        done = 0
        for _ in range(20):
            try:
                order = order_create(buyer=buyer.user, application_id=app.pk).order
            except OutOfStock:
                continue
            order_cancel(buyer=buyer.user, order_id=order.pk)
            done += 1
        return done

    def flipper() -> int:
        for n in range(20):
            can_order = n % 2 == 1
            items = [HeartbeatItem(uid, 60, can_order) for uid in uids[:6]]
            modems_heartbeat(reseller=agent.user, items=items)
        return 0

    def reader() -> int:
        for _ in range(40):
            stock_counts.stock()(app.pk, "normal")
        return 0

    calls = [lambda b=b: buyer_loop(b) for b in buyers] + [flipper, flipper, reader, reader]
    results = run_at_once(calls)

    errors = [result for result in results if isinstance(result, Exception)]
    assert not errors, errors
    assert sum(results[:8]) > 0
    assert stock_differences() == []
    assert stock(app.pk) == 12
