"""Routing to numbers that deliver (orders/statements/free_modems.py): a number that keeps
failing an application rests from it, the stock follows, and the pick prefers, among the
first free modems, the numbers likeliest to deliver, with a share of orders left to
exploration; then a simulation of a pool with burnt numbers, routing on and off."""

import itertools
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from modems.models import Modem
from orders.models import Application, NumberRecord, Order, OrderStatus
from orders.services import (
    numbers_rest,
    order_cancel,
    order_create,
    order_finish,
    sms_receive,
)
from orders.statements import placing, stock_counts
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer
from zerotp import errors

pytestmark = pytest.mark.django_db
SPREAD = placing.next_start  # the production sequence, which conftest pins to 0 per test


@pytest.fixture
def agent() -> Agent:
    return make_agent()


@pytest.fixture
def buyer() -> Buyer:
    return make_buyer(balance=1_000_000)


def order(buyer: Buyer, app: Application) -> Order:
    return order_create(buyer=buyer.user, application_id=app.pk).order


def fail(buyer: Buyer, app: Application) -> Order:
    placed = order(buyer, app)
    order_cancel(buyer=buyer.user, order_id=placed.pk)
    return placed


def stock(app: Application) -> int:
    return stock_counts.stock()(app.pk, "normal")


def record(phone_number: str, app: Application) -> NumberRecord:
    return NumberRecord.objects.get(phone_number=phone_number, application_id=app.pk)


# --- Resting -----------------------------------------------------------------------------


def test_a_number_rests_from_an_application_it_failed_three_times_in_a_row(
    agent: Agent, buyer: Buyer, settings: Any
) -> None:
    settings.NUMBER_REST_SECONDS = 3600
    modem = ModemFactory(reseller=agent.user)
    whatsapp, telegram = ApplicationFactory(), ApplicationFactory()
    for _ in range(2):
        fail(buyer, whatsapp)
    assert order(buyer, whatsapp).modem_id == modem.pk  # two failures: still picked
    order_cancel(buyer=buyer.user, order_id=Order.objects.latest("id").pk)

    with pytest.raises(errors.OutOfStock):  # the third: rests at once, for the pick
        order(buyer, whatsapp)
    assert order(buyer, telegram).modem_id == modem.pk  # from that application only

    # The stock follows the flag the minute job writes.
    assert stock(whatsapp) == 1
    assert numbers_rest() == (1, 0)
    assert record(modem.phone_number, whatsapp).resting
    assert (stock(whatsapp), stock(telegram)) == (0, 0)  # telegram: its open order
    assert numbers_rest() == (0, 0)  # written once


def test_a_rest_ends_after_its_time_and_one_more_failure_starts_another(
    agent: Agent, buyer: Buyer, settings: Any
) -> None:
    settings.NUMBER_REST_SECONDS = 3600
    modem = ModemFactory(reseller=agent.user)
    app = ApplicationFactory()
    for _ in range(3):
        fail(buyer, app)
    numbers_rest()
    rested = record(modem.phone_number, app)
    assert rested.resting and rested.failed_in_a_row == 3

    # An hour and a second after the last failure.
    NumberRecord.objects.filter(pk=rested.pk).update(
        last_failed_at=timezone.now() - timedelta(seconds=3601)
    )
    assert order(buyer, app).modem_id == modem.pk  # the pick reads the rule itself
    assert numbers_rest() == (0, 1)
    order_cancel(buyer=buyer.user, order_id=Order.objects.latest("id").pk)

    with pytest.raises(errors.OutOfStock):  # on probation: it has not delivered since
        order(buyer, app)
    assert numbers_rest() == (1, 0)
    assert stock(app) == 0


def test_the_run_of_failures_is_per_application(agent: Agent, buyer: Buyer) -> None:
    """Codes for another application do not end it (and a number that delivered an
    application is never ordered for it again anyway)."""
    modem = ModemFactory(reseller=agent.user)
    app, other = ApplicationFactory(), ApplicationFactory()
    fail(buyer, app)
    fail(buyer, app)
    delivered = order(buyer, other)
    sms_receive(reseller=agent.user, uid=modem.uid, sender="X", text="Kode 482910")
    order_finish(buyer=buyer.user, order_id=delivered.pk)

    assert record(modem.phone_number, app).failed_in_a_row == 2
    assert record(modem.phone_number, other).delivered == 1
    fail(buyer, app)
    assert numbers_rest() == (1, 0)


def test_no_rest_when_the_setting_is_zero(agent: Agent, buyer: Buyer, settings: Any) -> None:
    settings.NUMBER_REST_AFTER_FAILURES = 0
    ModemFactory(reseller=agent.user)
    app = ApplicationFactory()
    for _ in range(5):
        fail(buyer, app)
    assert numbers_rest() == (0, 0)
    assert order(buyer, app).status == OrderStatus.PENDING


def test_the_expiry_job_writes_the_rests(agent: Agent, buyer: Buyer) -> None:
    from orders.tasks import expire_orders

    modem = ModemFactory(reseller=agent.user)
    app = ApplicationFactory()
    for _ in range(3):
        placed = order(buyer, app)
        Order.objects.filter(pk=placed.pk).update(expires_at=timezone.now())
        expire_orders()
    assert record(modem.phone_number, app).resting
    assert stock(app) == 0


def test_the_stock_follows_a_rest_as_its_modem_goes_and_its_number_moves(
    agent: Agent, buyer: Buyer
) -> None:
    modem = ModemFactory(reseller=agent.user)
    app = ApplicationFactory()
    for _ in range(3):
        fail(buyer, app)
    numbers_rest()
    assert stock(app) == 0

    Modem.objects.filter(pk=modem.pk).update(online=False)
    assert stock(app) == 0 and stock_counts.stock_differences() == []
    Modem.objects.filter(pk=modem.pk).update(online=True)
    # The SIM moves to another slot: the rest follows the number.
    slot = ModemFactory(reseller=agent.user, phone_number=None)
    Modem.objects.filter(pk=modem.pk).update(phone_number=None)
    Modem.objects.filter(pk=slot.pk).update(phone_number=modem.phone_number)
    assert stock(app) == 0 and stock_counts.stock_differences() == []

    NumberRecord.objects.filter(application_id=app.pk).update(
        last_failed_at=timezone.now() - timedelta(days=1)
    )
    assert numbers_rest() == (0, 1)
    assert stock(app) == 1 and stock_counts.stock_differences() == []
    assert order(buyer, app).modem_id == slot.pk


# --- Preference --------------------------------------------------------------------------


def test_the_pick_prefers_a_number_with_fewer_failures_for_the_application(
    agent: Agent, buyer: Buyer, settings: Any
) -> None:
    first = ModemFactory(reseller=agent.user)
    second = ModemFactory(reseller=agent.user)
    app = ApplicationFactory()
    assert fail(buyer, app).modem_id == first.pk  # no record yet: the first free modem
    assert fail(buyer, app).modem_id == second.pk  # the first has failed once
    assert fail(buyer, app).modem_id == first.pk  # one failure each: the first again
    assert order(buyer, ApplicationFactory()).modem_id == first.pk  # another: no failures

    settings.ROUTING_CANDIDATES = 1  # no preference: the first free modem, always
    assert fail(buyer, app).modem_id == first.pk


def test_exploring_takes_the_first_free_modem(agent: Agent, buyer: Buyer, settings: Any) -> None:
    first = ModemFactory(reseller=agent.user)
    ModemFactory(reseller=agent.user)
    app = ApplicationFactory()
    fail(buyer, app)
    settings.ROUTING_EXPLORATION_PERCENT = 100
    assert order(buyer, app).modem_id == first.pk


# --- A pool with burnt numbers -----------------------------------------------------------


def simulate(routing: bool, settings: Any, seed: int = 7) -> dict[str, Any]:
    """100 numbers, 20 of them burnt for WhatsApp (its codes never come; they deliver for
    other applications), 500 orders: a fifth for WhatsApp, the rest spread over nine
    other applications; a good number's code comes 9 times in 10, else the buyer cancels.
    Ten numbers join halfway. Off: no rest, the first free modem."""
    if not routing:
        settings.NUMBER_REST_AFTER_FAILURES = 0
        settings.ROUTING_CANDIDATES = 1
    chance = random.Random(seed)
    random.seed(seed)  # the share of orders that explore (orders.services)
    agent, buyer = make_agent(), make_buyer(balance=2_000_000)
    whatsapp = ApplicationFactory(name="WhatsApp")
    others = [ApplicationFactory() for _ in range(9)]
    modems = ModemFactory.create_batch(100, reseller=agent.user)
    burnt = {modem.pk for modem in chance.sample(modems, 20)}
    outcomes: Counter[tuple[str, str]] = Counter()
    orders_per_modem: Counter[int] = Counter()
    joined = []
    for number in range(500):
        if number == 250:
            joined = [m.pk for m in ModemFactory.create_batch(10, reseller=agent.user)]
        app = whatsapp if chance.random() < 0.2 else chance.choice(others)
        kind = "whatsapp" if app is whatsapp else "other"
        try:
            placed = order(buyer, app)
        except errors.OutOfStock:
            outcomes[kind, "out_of_stock"] += 1
            continue
        orders_per_modem[placed.modem_id] += 1
        delivers = not (app is whatsapp and placed.modem_id in burnt) and chance.random() < 0.9
        if delivers:
            modem = Modem.objects.get(pk=placed.modem_id)
            code = f"Kode {100000 + number}"  # an SMS repeated word for word is a duplicate
            sms_receive(reseller=agent.user, uid=modem.uid, sender="X", text=code)
            order_finish(buyer=buyer.user, order_id=placed.pk)
            outcomes[kind, "delivered"] += 1
        else:
            order_cancel(buyer=buyer.user, order_id=placed.pk)
            outcomes[kind, "failed"] += 1
        if number % 50 == 49:
            numbers_rest()  # the minute job, now and then
    delivered, failed = outcomes["whatsapp", "delivered"], outcomes["whatsapp", "failed"]
    return {
        "whatsapp_success": delivered / (delivered + failed),
        "outcomes": dict(outcomes),
        "never_ordered": [m.pk for m in modems if not orders_per_modem[m.pk]],
        "fewest": min(orders_per_modem[m.pk] for m in modems),
        "spread": sorted(Counter(orders_per_modem[m.pk] for m in modems).items()),
        "joined_never_ordered": [pk for pk in joined if not orders_per_modem[pk]],
        "burnt_whatsapp_orders": Order.objects.filter(
            application=whatsapp, modem_id__in=burnt
        ).count(),
    }


def test_routing_raises_whatsapps_success_in_a_pool_with_burnt_numbers_and_starves_none(
    settings: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(placing, "next_start", SPREAD)
    settings.ROUTING_EXPLORATION_PERCENT = 10  # the default, which conftest turns off
    monkeypatch.setattr(placing, "_starts", itertools.count(0))  # the same run every time
    on = simulate(routing=True, settings=settings)
    Modem.objects.update(online=False)  # a second pool: new numbers, applications, buyer
    off = simulate(routing=False, settings=settings)

    with capsys.disabled():
        for name, run in (("on", on), ("off", off)):
            print(
                f"\nrouting {name}: WhatsApp success {run['whatsapp_success']:.1%}, "
                f"orders on burnt numbers {run['burnt_whatsapp_orders']}, {run['outcomes']}, "
                f"numbers by orders {run['spread']}"
            )
    assert on["whatsapp_success"] >= off["whatsapp_success"] + 0.2
    assert on["never_ordered"] == [] and on["joined_never_ordered"] == []
