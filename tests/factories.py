"""Test data. Accounts are made through the account services so that their keys are
real; money arrives only through the ledger (top-ups)."""

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import factory
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from accounts.services import account_create
from billing.services import topup
from modems.carriers import carrier_of
from modems.models import Modem
from orders.models import Application, ApplicationPrice, Order, OrderStatus

_numbers = itertools.count(1)


@dataclass
class Buyer:
    user: User
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"HTTP_X_API_KEY": self.key}


@dataclass
class Agent:
    user: User
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"HTTP_X_AGENT_KEY": self.key}


def make_buyer(balance: int = 0, email: str | None = None) -> Buyer:
    account = account_create(email=email or f"buyer{next(_numbers)}@example.com", with_api_key=True)
    assert account.api_key
    if balance:
        topup(user=account.user, amount=balance)
    return Buyer(user=account.user, key=account.api_key)


def make_agent(email: str | None = None) -> Agent:
    account = account_create(
        email=email or f"reseller{next(_numbers)}@example.com", is_reseller=True
    )
    assert account.agent_key
    return Agent(user=account.user, key=account.agent_key)


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"App {n}")
    code = factory.Sequence(lambda n: f"app{n}")
    sender_patterns = ""

    @factory.post_generation
    def prices(self, create: bool, extracted: dict[str, int] | None, **kwargs: Any) -> None:
        for operator, price in (extracted if extracted is not None else {"normal": 3500}).items():
            ApplicationPrice.objects.create(application=self, operator=operator, price=price)


class ModemFactory(factory.django.DjangoModelFactory):
    """An online, orderable modem unless told otherwise."""

    class Meta:
        model = Modem

    uid = factory.Sequence(lambda n: f"COM{n}")
    phone_number = factory.Sequence(lambda n: f"62811{n:07d}")
    provider = "Telkomsel"
    carrier = factory.LazyAttribute(lambda modem: carrier_of(modem.provider))
    signal = 80
    mapping = "normal"
    can_order = True
    last_heartbeat_at = factory.LazyFunction(timezone.now)
    # As heartbeats and the offline job leave it.
    online = factory.LazyAttribute(
        lambda modem: (
            modem.last_heartbeat_at is not None
            and modem.last_heartbeat_at >= offline_since(settings.MODEM_ONLINE_SECONDS)
        )
    )


def offline_since(seconds: int) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def finished_order(buyer: User, application: Application, created_at: datetime) -> Order:
    """A finished order of the buyer's history, on an offline modem of its own: it takes
    nothing from the stock a test sets up."""
    reseller = make_agent().user
    order = Order.objects.create(
        buyer=buyer,
        application=application,
        operator="normal",
        modem=ModemFactory(reseller=reseller, last_heartbeat_at=None),
        reseller=reseller,
        phone_number=f"62899{next(_numbers):07d}",
        price=3500,
        created_at=created_at,
        expires_at=created_at + timedelta(minutes=20),
    )
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FINISHED)
    return order
