"""On PostgreSQL an order's money moves in the statement that changes the order, and that
statement checks its own ledger outcome (zerotp_assert, billing migration 0003). These
tests run without a test transaction around them (a cancel then runs in autocommit, as in
production) and break the ledger's preconditions on purpose: the statement must undo
itself, the order and every balance unchanged."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import AlreadyBooked
from orders import services
from orders.models import Order, OrderStatus
from tests.factories import ApplicationFactory, ModemFactory, make_agent, make_buyer
from zerotp import errors

pytestmark = [
    pytest.mark.postgres(
        why="tests the statement that books an order's money itself, which exists"
    ),
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
