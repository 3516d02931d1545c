"""The catalogue's stock is a promise: for each application and operator (and each mobile
carrier, as the sms-activate dialect asks), exactly that many orders succeed, one after
another, before the next one is out of stock.

The catalogue reads counts that triggers keep set-wise (`stock_counts.stock`) while an
order picks one free modem at a time (`free_modems.free_modems`): two renderings of one
rule (orders/statements/free_modems.py; docs/API.md, "Stock rules"). A property test throws
random worlds of modems and order histories at both, on either database. The regression
tests below it are the disagreements it found in the catalogue and the pick as they were
before they shared the rule (each failed then), shrunk to their smallest world."""

import pprint
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import hypothesis
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, note
from hypothesis import strategies as st

from accounts.models import User
from orders.models import Application, Order, OrderStatus
from orders.selectors import services_catalogue
from orders.services import order_create
from orders.statements import stock_counts
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer
from zerotp.errors import OutOfStock

OPERATORS = ("normal", "promo", "special")
CARRIERS = ("telkomsel", "indosat")  # every modem's is one of them (the provider it reports)
PROVIDERS = {"telkomsel": "TELKOMSEL", "indosat": "INDOSAT OOREDOO"}
PRICE = 1000
MODEM_NUMBERS = tuple(f"62811000{n:04d}" for n in range(8))  # modem i's, when it has one
GONE_NUMBERS = ["628119990001", "628119990002"]  # numbers that served orders, now on no modem
# Far from the edges of MODEM_ONLINE_SECONDS (120 s) and of an order's time, so that the
# seconds a test takes change nothing.
LONG_AGO = timedelta(minutes=30)
MOST_ORDERS_ANY_PAIR_CAN_TAKE = 20  # more than the most modems a world has


# --- Worlds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModemSpec:
    operator: str
    number: str | None
    heartbeat: str  # "fresh", "stale" or "never"
    can_order: bool = True
    disabled: bool = False
    carrier: str = "telkomsel"


@dataclass(frozen=True)
class OrderSpec:
    """An order from the history: on a modem, for a number that may no longer be the
    modem's (its SIM moved, or the modem got another one)."""

    application: int  # index into World.applications
    modem: int  # index into World.modems
    number: str
    status: str
    past_its_time: bool = False  # expires_at in the past: no longer open, by the rules


@dataclass(frozen=True)
class World:
    applications: tuple[tuple[str, ...], ...]  # the operators each application is priced for
    modems: tuple[ModemSpec, ...]
    orders: tuple[OrderSpec, ...] = ()


order_statuses = st.sampled_from(OrderStatus.values)


def mostly(usual: object, *unusual: object) -> st.SearchStrategy:
    """The usual value three times in four; shrinks towards it."""
    return st.sampled_from([usual] * 3 * len(unusual) + list(unusual))


@st.composite
def modem_specs(draw: st.DrawFn, number: str) -> ModemSpec:
    # Mostly orderable, else out of stock for one of the stock rules' reasons. Drawn each on
    # its own, they would leave one modem in three orderable: few worlds would have any
    # stock to disagree about.
    out_because = draw(mostly(None, "stale", "never", "cannot order", "disabled", "no number"))
    return ModemSpec(
        operator=draw(mostly("normal", "promo", "special")),
        number=None if out_because == "no number" else number,
        heartbeat=out_because if out_because in ("stale", "never") else "fresh",
        can_order=out_because != "cannot order",
        disabled=out_because == "disabled",
        carrier=draw(mostly(*CARRIERS)),
    )


@st.composite
def order_specs(draw: st.DrawFn, applications: int, modems: tuple[ModemSpec, ...]) -> OrderSpec:
    modem = draw(st.integers(0, len(modems) - 1))
    # Half the time the number the modem has now; else another modem's (the SIM moved
    # there after the order), or one on no modem any more (the SIM left the pool).
    own = modems[modem].number
    numbers = st.sampled_from(
        [spec.number for i, spec in enumerate(modems) if spec.number and i != modem] + GONE_NUMBERS
    )
    if own:
        numbers = st.just(own) | numbers
    return OrderSpec(
        application=draw(st.integers(0, applications - 1)),
        modem=modem,
        number=draw(numbers),
        status=draw(order_statuses),
        past_its_time=draw(st.booleans()),
    )


OPEN = (OrderStatus.PENDING, OrderStatus.COMPLETED)
USED = (OrderStatus.COMPLETED, OrderStatus.FINISHED)


def _as_the_database_allows(orders: list[OrderSpec]) -> tuple[OrderSpec, ...]:
    """The history without the orders the database refuses (orders.models.Order's unique
    constraints): a second open order for an application on one modem, or for one
    number; a second order a number received an SMS for, for one application."""
    kept, taken = [], set()
    for order in orders:
        keys = set()
        if order.status in OPEN:
            keys |= {("open on modem", order.application, order.modem)}
            keys |= {("open for number", order.application, order.number)}
        if order.status in USED:
            keys |= {("served", order.application, order.number)}
        if keys & taken:
            continue
        taken |= keys
        kept.append(order)
    return tuple(kept)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    applications = draw(
        st.lists(
            st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=3, unique=True).map(tuple),
            min_size=1,
            max_size=2,
        )
    )
    count = draw(st.integers(0, len(MODEM_NUMBERS)))
    modems = tuple(draw(modem_specs(MODEM_NUMBERS[i])) for i in range(count))
    orders: list[OrderSpec] = []
    for _ in range(draw(st.integers(0, 8)) if modems else 0):
        if orders and draw(st.booleans()):
            # The same number on the same modem for the same application again: after a
            # cancel or an expiry (a second use is refused by the database, and dropped).
            again = draw(st.sampled_from(orders))
            status, past_its_time = draw(order_statuses), draw(st.booleans())
            orders.append(replace(again, status=status, past_its_time=past_its_time))
        else:
            orders.append(draw(order_specs(len(applications), modems)))
    return World(tuple(applications), modems, _as_the_database_allows(orders))


# --- Building a world and ordering from it ----------------------------------------------------


def _heartbeat(kind: str, now: datetime) -> datetime | None:
    return {"fresh": now, "stale": now - LONG_AGO, "never": None}[kind]


def build(world: World) -> list[Application]:
    """The world in the database; its applications, in the world's order."""
    now = timezone.now()
    reseller = make_agent().user
    earlier_buyer = make_buyer().user  # placed the history; the ordering buyer starts afresh
    applications = [
        ApplicationFactory(prices=dict.fromkeys(operators, PRICE))
        for operators in world.applications
    ]
    modems = [
        ModemFactory(
            reseller=reseller,
            uid=f"COM{i}",
            phone_number=spec.number,
            mapping=spec.operator,
            can_order=spec.can_order,
            disabled=spec.disabled,
            provider=PROVIDERS[spec.carrier],
            last_heartbeat_at=_heartbeat(spec.heartbeat, now),
        )
        for i, spec in enumerate(world.modems)
    ]
    for spec in world.orders:
        modem = modems[spec.modem]
        Order.objects.create(
            buyer=earlier_buyer,
            application=applications[spec.application],
            operator=modem.mapping,
            modem=modem,
            reseller=reseller,
            phone_number=spec.number,
            price=PRICE,
            status=spec.status,
            created_at=now - LONG_AGO,
            expires_at=now - LONG_AGO / 2 if spec.past_its_time else now + LONG_AGO,
        )
    return applications


def catalogue_stock(application: Application, operator: str) -> int:
    entry = next(item for item in services_catalogue() if item["id"] == application.pk)
    return entry["operators"][operator]["stock"]


def carrier_stock(application: Application, operator: str, carrier: str) -> int:
    """The stock of one mobile carrier's modems (the sms-activate dialect's `operator`)."""
    free = stock_counts.stock(carrier)
    return free(application.pk, operator)


def orders_until_out_of_stock(
    buyer: User, application: Application, operator: str, carrier: str | None = None
) -> int:
    """How many orders succeed, one after another, before one is out of stock."""
    served = 0
    while served < MOST_ORDERS_ANY_PAIR_CAN_TAKE:
        try:
            order_create(
                buyer=buyer, application_id=application.pk, operator=operator, carrier=carrier
            )
        except OutOfStock:
            return served
        served += 1
    raise AssertionError(f"{served} orders and never out of stock")


@contextmanager
def rolled_back() -> Iterator[None]:
    """Each example starts from the empty database the test started from."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def ordering_settings(settings: Any) -> None:
    # One buyer takes every free modem: no limit on active orders, and no scan guard
    # (none of these orders will get an SMS). The catalogue is read fresh each time.
    settings.MAX_ACTIVE_ORDERS = 1000
    settings.SCAN_GUARD = False
    settings.CATALOGUE_CACHE_SECONDS = 0


# --- The property ---------------------------------------------------------------------------


@hypothesis.settings(
    max_examples=150,
    deadline=None,
    # The fixtures set up the database and settings once; each example rolls back its rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(world=worlds())
def test_the_catalogue_stock_is_how_many_orders_then_succeed(
    db: None, ordering_settings: None, world: World
) -> None:
    # Hypothesis (6.170, under pytest) prints a failing example's arguments empty: say it.
    note(pprint.pformat(world))
    with rolled_back():
        applications = build(world)
        buyer = make_buyer(balance=1_000_000).user
        for index, app in enumerate(applications):
            for operator in world.applications[index]:
                shown = catalogue_stock(app, operator)
                # The carriers' stocks, each then ordered out, add up to the whole.
                by_carrier = 0
                for carrier in CARRIERS:
                    shown_here = carrier_stock(app, operator, carrier)
                    served = orders_until_out_of_stock(buyer, app, operator, carrier)
                    assert served == shown_here, (
                        f"application {index}, {operator}, {carrier}: "
                        f"the stock was {shown_here}, {served} orders succeeded"
                    )
                    by_carrier += served
                assert orders_until_out_of_stock(buyer, app, operator) == 0
                assert by_carrier == shown, (
                    f"application {index}, {operator}: "
                    f"the catalogue showed {shown}, {by_carrier} orders succeeded"
                )


# --- The disagreements it found, shrunk -----------------------------------------------------
# Each asserts that the catalogue and the orders agree, on what the stock rules say where
# they say it; each failed while the catalogue and the pick wrote the rule apart.


def orderable(modem: int, operator: str = "normal") -> ModemSpec:
    return ModemSpec(operator=operator, number=MODEM_NUMBERS[modem], heartbeat="fresh")


def stock_and_served(
    world: World, application: int = 0, operator: str = "normal"
) -> tuple[int, int]:
    """(the catalogue's stock, the orders that then succeed) for one application and
    operator of the world."""
    app = build(world)[application]
    buyer = make_buyer(balance=1_000_000).user
    return catalogue_stock(app, operator), orders_until_out_of_stock(buyer, app, operator)


def test_a_pending_order_holds_its_number_on_the_modem_the_number_moved_to(
    db: None, ordering_settings: None
) -> None:
    """An order pending on modem 0 for the number now on modem 1 (the SIM moved after the
    order): the order holds modem 0, and its number takes it to modem 1; neither is free.

    The pick hands out nothing (0 orders). The catalogue shows 1: it counts the pending
    order against modem 0 only, never against the modem its number is on now."""
    world = World(
        applications=(("normal",),),
        modems=(orderable(0), orderable(1)),
        orders=(OrderSpec(application=0, modem=0, number=MODEM_NUMBERS[1], status="pending"),),
    )

    assert stock_and_served(world) == (0, 0)


def test_a_completed_order_holds_its_modem_after_the_modem_got_another_number(
    db: None, ordering_settings: None
) -> None:
    """An order completed on modem 0 for a number the modem no longer has (it got another
    SIM since): the order is still open, so modem 0 is not free for the application.

    The pick hands out nothing (0 orders). The catalogue shows 1: it counts a completed
    order only against the modem that has the order's number now (as a used number), and
    no modem has it."""
    world = World(
        applications=(("normal",),),
        modems=(orderable(0),),
        orders=(OrderSpec(application=0, modem=0, number=GONE_NUMBERS[0], status="completed"),),
    )

    assert stock_and_served(world) == (0, 0)


def test_a_completed_order_past_its_time_counts_alike_in_the_catalogue_and_the_pick(
    db: None, ordering_settings: None
) -> None:
    """The same order as above, past its time, and the expiry job has not closed it yet.

    The catalogue shows 1: it never counts this order against modem 0. The pick hands out
    nothing (0 orders): it holds modem 0 for a completed order whatever its expires_at.
    The stock rules say the order is no longer open and modem 0's number never served the
    application, so 1; but orders_one_open_order_per_modem_app refuses a new order on
    modem 0 until the job has closed the old one, so 0 is what a pick can give till then.
    Either will do, as long as the catalogue and the pick give the same."""
    world = World(
        applications=(("normal",),),
        modems=(orderable(0),),
        orders=(
            OrderSpec(
                application=0,
                modem=0,
                number=GONE_NUMBERS[0],
                status="completed",
                past_its_time=True,
            ),
        ),
    )

    stock, served = stock_and_served(world)

    assert stock == served


def test_a_number_cannot_serve_the_application_twice(db: None, ordering_settings: None) -> None:
    """Modem 0's number served the application twice (two finished orders). The pick
    never makes that world, and the old catalogue miscounted it (0 in stock while one
    modem was free: one modem subtracted per order that used the number). The rule is a
    constraint now (orders_number_serves_app_once), so the world cannot exist, and the
    stock counts one order per rule, application and modem without sorting the history."""
    finished = OrderSpec(application=0, modem=0, number=MODEM_NUMBERS[0], status="finished")
    world = World(
        applications=(("normal",),),
        modems=(orderable(0), orderable(1)),
        orders=(finished, finished),
    )

    refused = r"orders_number_serves_app_once|UNIQUE constraint failed: orders_order.phone_number"
    with pytest.raises(IntegrityError, match=refused), transaction.atomic():
        build(world)
