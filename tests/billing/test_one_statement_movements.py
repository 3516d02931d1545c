"""On PostgreSQL an order's money moves in the statement that changes the order, and that
statement checks its own ledger outcome (zerotp_assert, billing migration 0003). These
tests run without a test transaction around them (a cancel then runs in autocommit, as in
production) and break the ledger's preconditions on purpose: the statement must undo
itself, the order and every balance unchanged."""

import threading

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import AlreadyBooked
from orders import services
from orders.models import Order, OrderStatus
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer
from zerotp import errors

pytestmark = [
    pytest.mark.one_statement(why="tests the statement that books an order's money itself"),
    pytest.mark.django_db(transaction=True),
]


def balances() -> dict[int, int]:
    return dict(LedgerAccount.objects.values_list("id", "balance"))


def pending_order() -> tuple[object, Order]:
    app = ApplicationFactory(prices={"normal": 4000})
    ModemFactory(reseller=make_agent().user)
    buyer = make_buyer(balance=10_000)
    response = APIClient().post(
        "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
    )
    assert response.status_code == 201, response.json()
    return buyer, Order.objects.get(pk=response.json()["order_id"])


def test_a_cancel_whose_refund_reference_is_taken_changes_nothing() -> None:
    buyer, order = pending_order()
    squatter = LedgerTransaction.objects.create(
        reference=f"order:{order.pk}:release", kind="release"
    )
    before, entries = balances(), LedgerEntry.objects.count()
    assert not connection.in_atomic_block  # the cancel runs in autocommit

    with pytest.raises(AlreadyBooked):
        services.order_cancel(buyer=buyer.user, order_id=order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING and order.closed_at is None
    assert balances() == before and LedgerEntry.objects.count() == entries
    squatter.delete()  # the books balance again for the autouse ledger check
    assert services.order_cancel(buyer=buyer.user, order_id=order.pk).status == "cancelled"


def test_a_cancel_whose_escrow_cannot_cover_the_refund_changes_nothing() -> None:
    buyer, order = pending_order()
    escrow = LedgerAccount.objects.get(kind=LedgerAccount.Kind.ESCROW)
    LedgerAccount.objects.filter(pk=escrow.pk).update(balance=order.price - 1)
    before, entries = balances(), LedgerEntry.objects.count()

    with pytest.raises(errors.InsufficientBalance):
        services.order_cancel(buyer=buyer.user, order_id=order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert balances() == before and LedgerEntry.objects.count() == entries
    LedgerAccount.objects.filter(pk=escrow.pk).update(balance=escrow.balance)
    assert services.order_cancel(buyer=buyer.user, order_id=order.pk).status == "cancelled"


@override_settings(MAX_ACTIVE_ORDERS=1)
def test_an_order_racing_a_wallet_change_goes_to_the_transaction_and_counts_it() -> None:
    """The one-statement order reads the pending count from its snapshot, exact only if no
    money moved on the wallet since. Another order of the same buyer commits while the
    statement waits for the wallet: the statement must write nothing and hand over to the
    transaction, which sees that order and refuses this one at the limit of one."""
    # The competitor orders another application, so that the two orders would not meet
    # on a modem: only the pending count can refuse this one.
    app, other = (
        ApplicationFactory(prices={"normal": 1000}),
        ApplicationFactory(prices={"normal": 1000}),
    )
    ModemFactory.create_batch(3, reseller=make_agent().user)
    buyer = make_buyer(balance=10_000)
    holding, release = threading.Event(), threading.Event()
    first: list[object] = []

    def competitor() -> None:
        try:
            with transaction.atomic():
                # Lock the wallet as an order does, then order while holding it.
                LedgerAccount.objects.select_for_update().get(user=buyer.user)
                holding.set()
                release.wait(10)
                first.append(services.order_create(buyer=buyer.user, application_id=other.pk))
        finally:
            connections.close_all()

    thread = threading.Thread(target=competitor)
    thread.start()
    assert holding.wait(10)
    # Let the competitor commit while this order's statement waits on the wallet lock.
    threading.Timer(0.3, release.set).start()
    with pytest.raises(errors.TooManyActiveOrders):
        services.order_create(buyer=buyer.user, application_id=app.pk)
    thread.join(10)

    assert len(first) == 1
    assert Order.objects.filter(buyer=buyer.user, status=OrderStatus.PENDING).count() == 1
    assert LedgerAccount.objects.get(user=buyer.user).balance == 9_000
