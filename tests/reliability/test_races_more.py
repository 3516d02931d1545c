"""Races beyond tests/orders/test_races.py, with real threads on PostgreSQL (each thread
its own connection and transaction, as under gunicorn; tests/concurrency.run_at_once
releases them together):

- the expiry sweep (two workers) racing a late SMS and a cancel at the expiry boundary;
- heartbeat and sync racing an inbound SMS for the same modem;
- a number moved between two modems of a reseller while an order on it is open, racing
  the SMS (and, on both databases, what happens to that number afterwards);
- top-ups racing orders.

Every trial ends in one consistent state; after every trial the books are checked
(balances equal entries, transactions sum to zero, escrow equals the pending orders'
prices, no reference booked twice, no order both refunded and paid)."""

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from billing.models import LedgerTransaction
from billing.services import reseller_share, topup, wallet_balance
from modems.models import Modem
from modems.services import HeartbeatItem, modems_heartbeat, modems_sync
from orders.models import Order, OrderStatus
from orders.services import order_cancel, order_create, order_finish, orders_expire, sms_receive
from tests.concurrency import run_at_once
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer
from tests.reliability.conftest import assert_books_sound
from zerotp import errors

RACE = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PRICE = 3000


def races(func: Callable) -> Callable:
    for mark in RACE:
        func = mark(func)
    return func


def bookings(order_id: int) -> Counter[str]:
    """How many ledger transactions of each kind this order has."""
    references = LedgerTransaction.objects.filter(reference__startswith=f"order:{order_id}:")
    return Counter(ref.rsplit(":", 1)[1] for ref in references.values_list("reference", flat=True))


def jittered(call: Callable[[], Any], most_ms: float = 8.0) -> Callable[[], Any]:
    def run() -> Any:
        time.sleep(random.uniform(0, most_ms) / 1000)
        return call()

    return run


def unexpected(results: list[Any], *allowed: type[BaseException]) -> list[Any]:
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]


# --- expiry sweep vs late SMS vs cancel, at the boundary --------------------------------------

EXPIRY_TRIALS = 40


@races
def test_expiry_racing_a_late_sms_and_a_cancel_at_the_boundary_ends_one_way() -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    ModemFactory.create_batch(EXPIRY_TRIALS + 2, reseller=agent.user)
    buyer = make_buyer(balance=PRICE * EXPIRY_TRIALS)
    outcomes: Counter[str] = Counter()

    for trial in range(EXPIRY_TRIALS):
        created = order_create(buyer=buyer.user, application_id=app.pk).order
        order = Order.objects.select_related("modem").get(pk=created.pk)
        # The boundary falls among the racers: some see the order in time, some too late.
        boundary = timezone.now() + timedelta(milliseconds=random.uniform(0, 30))
        Order.objects.filter(pk=order.pk).update(expires_at=boundary)

        def sms(order: Order = order, trial: int = trial) -> Any:
            return sms_receive(
                reseller=agent.user,
                uid=order.modem.uid,
                sender="WhatsApp",
                text=f"Your code is {trial:06d}",
            )

        def cancel(order: Order = order) -> Order:
            return order_cancel(buyer=buyer.user, order_id=order.pk)

        # Alternate which of the SMS and the cancel is held back, so that both win sometimes.
        sms_ms, cancel_ms = (1, 12) if trial % 2 else (12, 1)
        expired_a, expired_b, sms_result, cancelled = run_at_once(
            [
                jittered(orders_expire, 20),
                jittered(orders_expire, 20),
                jittered(sms, sms_ms),
                jittered(cancel, cancel_ms),
            ]
        )
        assert not unexpected([expired_a, expired_b, sms_result, cancelled], errors.InvalidState)
        # The clock passes the boundary and the sweep runs once more, as the schedule would.
        time.sleep(max(0.0, (boundary - timezone.now()).total_seconds()) + 0.001)
        settled = orders_expire()

        order.refresh_from_db()
        booked = bookings(order.pk)
        expirations = expired_a + expired_b + settled
        if order.status in (OrderStatus.COMPLETED, OrderStatus.FINISHED):
            outcome = "completed"
            assert sms_result.matched and sms_result.order_id == order.pk
            assert isinstance(cancelled, errors.InvalidState)
            assert (booked, expirations) == (Counter(hold=1, capture=1), 0)
        elif order.status == OrderStatus.CANCELLED:
            outcome = "cancelled"
            assert not sms_result.matched
            assert isinstance(cancelled, Order)
            assert (booked, expirations) == (Counter(hold=1, release=1), 0)
        else:
            outcome = "expired"
            assert order.status == OrderStatus.EXPIRED
            assert not sms_result.matched
            assert isinstance(cancelled, errors.InvalidState)
            assert (booked, expirations) == (Counter(hold=1, release=1), 1)
        outcomes[outcome] += 1
        assert_books_sound()

    print(f"expiry race outcomes over {EXPIRY_TRIALS} trials: {dict(outcomes)}")
    assert sum(outcomes.values()) == EXPIRY_TRIALS
    assert len(outcomes) >= 2, outcomes  # the race really was run both ways
    completed = outcomes["completed"]
    assert wallet_balance(buyer.user) == PRICE * (EXPIRY_TRIALS - completed)
    assert wallet_balance(agent.user) == reseller_share(PRICE) * completed


# --- heartbeat and sync vs inbound SMS on the same modem --------------------------------------

MODEM_TRIALS = 25


@races
def test_heartbeat_and_sync_racing_an_sms_for_the_same_modem_lose_nothing() -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    modems = [ModemFactory(reseller=agent.user, uid=f"COM{i}") for i in range(4)]
    buyer = make_buyer(balance=PRICE * MODEM_TRIALS)
    uids = [m.uid for m in modems]

    for trial in range(MODEM_TRIALS):
        for i, modem in enumerate(modems):  # fresh numbers: used ones are not offered again
            Modem.objects.filter(pk=modem.pk).update(phone_number=f"62819{trial:04d}{i:03d}")
        created = order_create(buyer=buyer.user, application_id=app.pk).order
        order = Order.objects.select_related("modem").get(pk=created.pk)
        started = timezone.now()
        provider = f"Provider {trial}"

        def sync(signal: int, provider: str = provider) -> Any:
            items = [{"uid": u, "provider": provider, "signal": signal} for u in reversed(uids)]
            return modems_sync(reseller=agent.user, items=items)

        def heartbeat(signal: int) -> Any:
            items = [HeartbeatItem(uid=u, signal=signal, can_order=True) for u in uids]
            return modems_heartbeat(reseller=agent.user, items=items)

        def sms(order: Order = order, trial: int = trial) -> Any:
            return sms_receive(
                reseller=agent.user,
                uid=order.modem.uid,
                sender="WhatsApp",
                text=f"Your code is {trial:06d}",
            )

        results = run_at_once(
            [lambda: sync(40), lambda: sync(40), lambda: heartbeat(60), lambda: heartbeat(60), sms]
        )

        assert not unexpected(results), results  # no deadlock, no lost update error
        sync_a, sync_b, beat_a, beat_b, sms_result = results
        assert (beat_a, beat_b) == ((4, []), (4, []))
        assert sms_result.matched and sms_result.order_id == order.pk
        assert sync_a.errors == sync_b.errors == []
        assert sync_a.updated + sync_b.updated in (4, 8)  # the second may find nothing to do
        order.refresh_from_db()
        assert order.status == OrderStatus.COMPLETED
        assert bookings(order.pk) == Counter(hold=1, capture=1)
        for modem in Modem.objects.filter(reseller=agent.user):
            assert modem.provider == provider
            assert modem.signal in (40, 60)
            assert modem.last_heartbeat_at >= started
        order_finish(buyer=buyer.user, order_id=order.pk)
        assert_books_sound()

    assert wallet_balance(agent.user) == reseller_share(PRICE) * MODEM_TRIALS
    assert wallet_balance(buyer.user) == 0


# --- a number moved between two modems of one reseller while its order is open ----------------

MOVE_TRIALS = 25


@races
def test_a_number_moving_to_another_modem_while_its_sms_arrives_pays_once() -> None:
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    old = ModemFactory(reseller=agent.user, uid="PORT1")
    new = ModemFactory(reseller=agent.user, uid="PORT2", can_order=False)
    buyer = make_buyer(balance=PRICE * MOVE_TRIALS)
    outcomes: Counter[str] = Counter()

    for trial in range(MOVE_TRIALS):
        number = f"6281977{trial:05d}"
        Modem.objects.filter(pk=new.pk).update(phone_number=None)
        Modem.objects.filter(pk=old.pk).update(phone_number=number)
        created = order_create(buyer=buyer.user, application_id=app.pk).order
        assert created.phone_number == number

        def move(number: str = number, trial: int = trial) -> Any:
            # The agent reports that the SIM now sits in PORT2 and PORT1 got another one.
            items = [
                {"uid": "PORT2", "phone_number": number},
                {"uid": "PORT1", "phone_number": f"6281988{trial:05d}"},
            ]
            return modems_sync(reseller=agent.user, items=items)

        def sms(number: str = number, trial: int = trial) -> Any:
            # The SMS was read from PORT1 just before the move.
            return sms_receive(
                reseller=agent.user,
                uid="PORT1",
                sender="WhatsApp",
                text=f"Your code is {trial:06d}",
                phone_number=number,
            )

        moved, sms_result = run_at_once([jittered(move, 4), jittered(sms, 4)])

        assert not unexpected([moved, sms_result]), (moved, sms_result)
        assert (moved.synced, moved.errors) == (2, [])
        assert Modem.objects.get(pk=new.pk).phone_number == number
        if not sms_result.matched:
            # Reported from the old port after the move: the agent reads it again from the
            # port the SIM is in now, and that one must reach the order.
            outcomes["re-read from the new port"] += 1
            sms_result = sms_receive(
                reseller=agent.user,
                uid="PORT2",
                sender="WhatsApp",
                text=f"Your code is {trial:06d}",
                phone_number=number,
            )
        else:
            outcomes["matched from the old port"] += 1
        assert sms_result.matched and sms_result.order_id == created.pk
        assert bookings(created.pk) == Counter(hold=1, capture=1)
        order_finish(buyer=buyer.user, order_id=created.pk)
        assert_books_sound()

    print(f"number move race over {MOVE_TRIALS} trials: {dict(outcomes)}")
    assert wallet_balance(agent.user) == reseller_share(PRICE) * MOVE_TRIALS


@pytest.fixture
def moved_number(db: None) -> dict[str, Any]:
    """An open order on 628197700001 in PORT1; then the agent syncs the SIM into PORT2."""
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    ModemFactory(reseller=agent.user, uid="PORT1", phone_number="628197700001")
    ModemFactory(reseller=agent.user, uid="PORT2", phone_number="628197700002")
    first = make_buyer(balance=PRICE)
    order = order_create(buyer=first.user, application_id=app.pk).order
    assert (order.phone_number, Order.objects.get(pk=order.pk).modem.uid) == (
        "628197700001",
        "PORT1",
    )
    result = modems_sync(
        reseller=agent.user,
        items=[
            {"uid": "PORT1", "phone_number": "628197700003"},
            {"uid": "PORT2", "phone_number": "628197700001"},
        ],
    )
    assert (result.synced, result.errors) == (2, [])
    return {"app": app, "agent": agent, "first": first, "order": order}


def test_a_moved_number_with_an_open_order_is_not_handed_out_again(moved_number: dict) -> None:
    second = make_buyer(balance=PRICE)

    try:
        handed = order_create(buyer=second.user, application_id=moved_number["app"].pk).order
    except errors.OutOfStock:
        handed = None

    # Whoever gets a number, it is not the one the first buyer is still waiting on.
    assert handed is None or handed.phone_number != moved_number["order"].phone_number
    open_on_number = Order.objects.filter(
        phone_number=moved_number["order"].phone_number,
        application=moved_number["app"],
        status__in=[OrderStatus.PENDING, OrderStatus.COMPLETED],
    )
    assert open_on_number.count() == 1


def test_the_sms_for_a_moved_number_reaches_the_order_that_holds_it(moved_number: dict) -> None:
    agent = moved_number["agent"]

    result = sms_receive(
        reseller=agent.user,
        uid="PORT2",  # where the SIM is now
        sender="WhatsApp",
        text="Your code is 551-902",
        phone_number="628197700001",
    )

    assert result.as_dict() == {
        "matched": True,
        "order_id": moved_number["order"].pk,
        "otp": "551902",
    }
    assert wallet_balance(agent.user) == reseller_share(PRICE)
    assert_books_sound()


# --- top-ups vs orders --------------------------------------------------------------------------

TOPUP_TRIALS = 30


@races
def test_a_topup_racing_an_order_either_pays_for_it_or_stays_on_the_balance(
    settings: Any,
) -> None:
    settings.NUMBER_REST_AFTER_FAILURES = 0  # thirty cancels on three numbers: no rests here
    app = ApplicationFactory(prices={"normal": PRICE})
    agent = make_agent()
    ModemFactory.create_batch(3, reseller=agent.user)
    outcomes: Counter[int] = Counter()

    for _ in range(TOPUP_TRIALS):
        # Some money already there: the wallet row exists, so both sides queue on its lock.
        buyer = make_buyer(balance=500)

        def order(buyer: Any = buyer) -> Any:
            return order_create(buyer=buyer.user, application_id=app.pk)

        def credit(buyer: Any = buyer) -> int:
            return topup(user=buyer.user, amount=PRICE)

        placed, balance_after_topup = run_at_once([jittered(order, 3), jittered(credit, 3)])

        assert not unexpected([placed, balance_after_topup], errors.InsufficientBalance)
        assert balance_after_topup in (500, 500 + PRICE)
        if isinstance(placed, errors.InsufficientBalance):
            outcomes[402] += 1
            assert wallet_balance(buyer.user) == 500 + PRICE
            assert not Order.objects.filter(buyer=buyer.user).exists()
        else:
            outcomes[201] += 1
            assert wallet_balance(buyer.user) == 500
            order_id = placed.order.pk
            assert bookings(order_id) == Counter(hold=1)
            order_cancel(buyer=buyer.user, order_id=order_id)  # frees the modem
            assert wallet_balance(buyer.user) == 500 + PRICE
        assert_books_sound()

    print(f"top-up race outcomes over {TOPUP_TRIALS} trials: {dict(outcomes)}")
    assert sum(outcomes.values()) == TOPUP_TRIALS


BURST_ROUNDS = 5


@races
def test_bursts_of_topups_and_orders_never_overdraw_or_lose_a_rupiah(settings: Any) -> None:
    settings.MAX_ACTIVE_ORDERS = 1000
    app = ApplicationFactory(prices={"normal": 1000})
    agent = make_agent()
    ModemFactory.create_batch(20 * BURST_ROUNDS, reseller=agent.user)
    buyer = make_buyer(balance=0)
    credited = placed = 0

    for _ in range(BURST_ROUNDS):
        calls: list[Callable[[], Any]] = [lambda: topup(user=buyer.user, amount=1000)] * 10
        calls += [lambda: order_create(buyer=buyer.user, application_id=app.pk)] * 20
        random.shuffle(calls)

        results = run_at_once(calls)

        assert not unexpected(results, errors.InsufficientBalance)
        credited += 1000 * sum(isinstance(r, int) for r in results)
        placed += sum(hasattr(r, "order") for r in results)
        assert wallet_balance(buyer.user) == credited - 1000 * placed >= 0
        assert Order.objects.filter(buyer=buyer.user).count() == placed
        assert_books_sound()

    print(f"bursts: {credited} credited, {placed} orders placed over {BURST_ROUNDS} rounds")
    assert credited == 1000 * 10 * BURST_ROUNDS
    assert 0 < placed <= 10 * BURST_ROUNDS
