"""`manage.py ledger_check` passes on sound books and exits non-zero on each kind of fault."""

import pytest
from django.core.management import CommandError, call_command

from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from orders.models import Order
from orders.services import order_create
from tests.factories import ApplicationFactory, Buyer, ModemFactory, make_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_order(buyer: Buyer) -> Order:
    app = ApplicationFactory(prices={"normal": 4000})
    ModemFactory(reseller=make_agent().user)
    created = order_create(buyer=buyer.user, application_id=app.pk)
    return Order.objects.get(pk=created.order.pk)


@pytest.mark.usefixtures("open_order")
def test_sound_books_pass(capsys: pytest.CaptureFixture) -> None:
    call_command("ledger_check")
    assert "Ledger sound" in capsys.readouterr().out


def test_a_balance_that_differs_from_its_entries_fails(open_order: Order) -> None:
    wallet = LedgerAccount.objects.get(user=open_order.buyer)
    LedgerAccount.objects.filter(pk=wallet.pk).update(balance=wallet.balance + 1)
    with pytest.raises(CommandError, match="1 difference"):
        call_command("ledger_check")
    LedgerAccount.objects.filter(pk=wallet.pk).update(balance=wallet.balance)


def test_escrow_that_differs_from_the_pending_orders_fails(open_order: Order) -> None:
    Order.objects.filter(pk=open_order.pk).update(price=open_order.price + 1)
    with pytest.raises(CommandError):
        call_command("ledger_check")
    Order.objects.filter(pk=open_order.pk).update(price=open_order.price)


def test_a_transaction_that_does_not_sum_to_zero_fails(open_order: Order) -> None:
    tx = LedgerTransaction.objects.create(reference="broken", kind="topup")
    entry = LedgerEntry.objects.create(
        transaction=tx, account=LedgerAccount.objects.get(user=open_order.buyer), amount=5
    )
    with pytest.raises(CommandError):
        call_command("ledger_check")
    entry.delete()
    tx.delete()
