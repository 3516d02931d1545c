"""Fixtures for the reliability suite: a populated marketplace for the fuzzer, a network
that cannot leave the machine, and the books checked beyond `ledger_differences()`."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.db.models import Count, Sum

from accounts.models import User
from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import ledger_differences
from modems.models import InboundSms, Modem
from orders.models import Application, CallbackDelivery, IdempotencyKey, Order, OrderStatus
from orders.services import order_create
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory


def pytest_configure(config: pytest.Config) -> None:
    # Also to be listed in pyproject.toml's markers; registered here so that the folder
    # runs under --strict-markers on its own.
    config.addinivalue_line(
        "markers",
        "faults: restarts a private PostgreSQL cluster; skipped unless ZEROTP_FAULT_TESTS=1",
    )
    config.addinivalue_line(
        "markers",
        "scale_out: 2 web nodes and 2 workers, one of each killed; "
        "skipped unless ZEROTP_SCALE_OUT_TESTS=1",
    )


@pytest.fixture(autouse=True)
def reliability_settings(settings: Any) -> None:
    # These tests open, cancel and expire many orders on purpose; the number-scanning
    # guard has its own tests (tests/orders/test_scan_guard.py) and would only get in the way.
    settings.SCAN_GUARD = False


def snapshot() -> dict[str, Any]:
    """Every row a buyer or agent request could write, in a comparable form."""
    return {
        "orders": list(Order.objects.order_by("pk").values_list()),
        "sms": list(InboundSms.objects.order_by("pk").values_list()),
        "modems": list(Modem.objects.order_by("pk").values_list()),
        "ledger": LedgerTransaction.objects.count(),
        "entries": LedgerEntry.objects.count(),
        "balances": list(LedgerAccount.objects.order_by("pk").values_list("pk", "balance")),
        "idempotency": IdempotencyKey.objects.count(),
        "callbacks": list(CallbackDelivery.objects.order_by("pk").values_list()),
        "users": list(
            User.objects.order_by("pk").values_list(
                "pk", "callback_url", "callback_enabled", "callback_secret", "is_active"
            )
        ),
    }


@dataclass
class Market:
    buyer: Buyer
    agent: Agent
    app: Application
    modem: Modem
    order_id: int

    def headers(self, path: str) -> dict[str, str]:
        return self.agent.headers if path.startswith("/api/modem/") else self.buyer.headers


@pytest.fixture
def market(buyer: Buyer, agent: Agent) -> Market:
    """One application, two modems of one reseller (COM1, COM2), one pending order."""
    app = ApplicationFactory(prices={"normal": 3500})
    modem = ModemFactory(reseller=agent.user, uid="COM1")
    ModemFactory(reseller=agent.user, uid="COM2")
    order_id = order_create(buyer=buyer.user, application_id=app.pk).order.pk
    return Market(buyer, agent, app, modem, order_id)


def escrow_balance() -> int:
    escrow = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.ESCROW, user__isnull=True)
    return escrow.values_list("balance", flat=True).first() or 0


def pending_prices() -> int:
    total = Order.objects.filter(status=OrderStatus.PENDING).aggregate(total=Sum("price"))
    return total["total"] or 0


def doubled_references() -> list[str]:
    """References booked more than once (the unique index makes this impossible; prove it)."""
    return list(
        LedgerTransaction.objects.values("reference")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("reference", flat=True)
    )


def assert_books_sound() -> None:
    """Balances equal their entries, every transaction sums to zero, escrow equals the
    prices of the pending orders, no reference is booked twice, and no order has been
    both refunded and paid out."""
    assert ledger_differences() == []
    assert escrow_balance() == pending_prices()
    assert doubled_references() == []
    references = set(
        LedgerTransaction.objects.filter(reference__startswith="order:").values_list(
            "reference", flat=True
        )
    )
    for order in Order.objects.all():
        hold = f"order:{order.pk}:hold" in references
        capture = f"order:{order.pk}:capture" in references
        release = f"order:{order.pk}:release" in references
        assert hold, f"order {order.pk} has no hold"
        assert not (capture and release), f"order {order.pk} was paid out and refunded"
        if order.status == OrderStatus.PENDING:
            assert not (capture or release), order
        elif order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            assert release and not capture, order
        else:  # completed or finished: an SMS came
            assert capture and not release, order


@dataclass
class NetworkLog:
    connects: list[Any] = field(default_factory=list)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> NetworkLog:
    """Every host name resolves to one public address (so that fuzzed callback URLs pass
    the save-time check without real DNS), and no socket may connect anywhere (so that
    every send fails fast as a connection error)."""
    log = NetworkLog()

    def fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", int(port or 80)))]

    def refuse(self: socket.socket, address: Any) -> None:
        log.connects.append(address)
        raise ConnectionRefusedError("no network in the reliability suite")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return log


@pytest.fixture
def wsgi_in_test_transaction() -> Iterator[None]:
    """Calling the real WSGI handler fires request_started/request_finished, whose
    close_old_connections would close the test's connection (and with it the test
    transaction). Django's own test client disconnects them the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
