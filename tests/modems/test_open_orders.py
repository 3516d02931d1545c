"""GET /api/modem/orders: the pending orders on the reseller's own modems, which number waits
for which application's SMS (the agent's simulator and a Modempool UI read it)."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from billing.services import topup
from modems.models import Modem
from orders.models import Application, Order, OrderStatus
from orders.selectors import OPEN_ORDERS_MAX
from orders.services import order_cancel, order_create, order_finish, orders_expire, sms_receive
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent

pytestmark = pytest.mark.django_db

OPEN_ORDERS = "/api/modem/orders"
# The agent key's lookup, then the orders joined to their modem and application.
OPEN_ORDERS_BUDGET = 2


def open_orders(client: APIClient, agent: Agent) -> list[dict[str, Any]]:
    response = client.get(OPEN_ORDERS, **agent.headers)
    assert response.status_code == 200, response.json()
    return response.json()["orders"]


def app_named(name: str) -> Application:
    return ApplicationFactory(
        name=name, sender_patterns=f"\\b{name}\\b", prices={"normal": 3500, "promo": 2500}
    )


def order_on(buyer: Buyer, app: Application, operator: str = "normal") -> int:
    return order_create(buyer=buyer.user, application_id=app.pk, operator=operator).order.pk


def test_the_agent_sees_its_pending_orders_oldest_first_with_number_and_application(
    client: APIClient, agent: Agent, buyer: Buyer
) -> None:
    modem = ModemFactory(reseller=agent.user, uid="SIM-1", phone_number="628111000001")
    whatsapp, telegram = app_named("WhatsApp"), app_named("Telegram")
    first = order_on(buyer, whatsapp)
    second = order_on(buyer, telegram)

    orders = open_orders(client, agent)

    stored = {o.pk: o for o in Order.objects.all()}
    assert orders == [
        {
            "order_id": order_id,
            "uid": "SIM-1",
            "phone_number": modem.phone_number,
            "application_id": app.pk,
            "application": app.name,
            "operator": "normal",
            "created_at": stored[order_id].created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": stored[order_id].expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for order_id, app in ((first, whatsapp), (second, telegram))
    ]


def test_the_order_keeps_the_number_it_was_given_and_shows_its_operator(
    client: APIClient, agent: Agent, buyer: Buyer
) -> None:
    ModemFactory(reseller=agent.user, uid="SIM-9", phone_number="628111000009", mapping="promo")
    order_id = order_on(buyer, app_named("WhatsApp"), operator="promo")
    Modem.objects.filter(uid="SIM-9").update(phone_number="628111000010")

    [order] = open_orders(client, agent)

    assert (order["order_id"], order["operator"]) == (order_id, "promo")
    assert order["phone_number"] == "628111000009"


def test_another_resellers_orders_never_show(client: APIClient, agent: Agent, buyer: Buyer) -> None:
    other = make_agent()
    ModemFactory(reseller=agent.user, uid="COM1", mapping="normal")
    ModemFactory(reseller=other.user, uid="COM1", mapping="promo")
    app = app_named("WhatsApp")
    mine = order_on(buyer, app, "normal")
    theirs = order_on(buyer, app, "promo")

    assert [o["order_id"] for o in open_orders(client, agent)] == [mine]
    assert [o["order_id"] for o in open_orders(client, other)] == [theirs]
    assert [o["order_id"] for o in open_orders(client, make_agent())] == []


def test_cancelled_completed_finished_and_expired_orders_do_not_show(
    client: APIClient, agent: Agent, buyer: Buyer
) -> None:
    modem = ModemFactory(reseller=agent.user)
    apps = {
        name: app_named(name) for name in ("Waiting", "Cancel", "Sms", "Finish", "Late", "Gone")
    }
    ids = {name: order_on(buyer, app) for name, app in apps.items()}

    order_cancel(buyer=buyer.user, order_id=ids["Cancel"])
    for name in ("Sms", "Finish"):
        sms_receive(reseller=agent.user, uid=modem.uid, sender=name, text="Code 123456")
    order_finish(buyer=buyer.user, order_id=ids["Finish"])
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk=ids["Gone"]).update(expires_at=past)
    orders_expire()  # the job expires and refunds "Gone"
    # "Late" is past expires_at and still pending: the job has not come round yet.
    Order.objects.filter(pk=ids["Late"]).update(expires_at=past)

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert [statuses[ids[n]] for n in ("Cancel", "Sms", "Finish", "Late", "Gone")] == [
        OrderStatus.CANCELLED,
        OrderStatus.COMPLETED,
        OrderStatus.FINISHED,
        OrderStatus.PENDING,
        OrderStatus.EXPIRED,
    ]
    assert [o["order_id"] for o in open_orders(client, agent)] == [ids["Waiting"]]


def test_without_a_valid_agent_key_it_is_401(client: APIClient, buyer: Buyer, agent: Agent) -> None:
    for headers in ({}, {"HTTP_X_AGENT_KEY": "ztp_agent_nope"}, {"HTTP_X_AGENT_KEY": buyer.key}):
        response = client.get(OPEN_ORDERS, **headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_agent_key"
    assert client.get(OPEN_ORDERS, **buyer.headers).status_code == 401


def test_the_agent_key_of_an_account_that_is_no_longer_a_reseller_is_refused(
    client: APIClient, agent: Agent
) -> None:
    User.objects.filter(pk=agent.user.pk).update(is_reseller=False)

    response = client.get(OPEN_ORDERS, **agent.headers)

    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_the_read_costs_two_queries_for_one_order_and_for_many(
    client: APIClient,
    agent: Agent,
    buyer: Buyer,
    settings: Any,
    django_assert_num_queries: Any,
) -> None:
    settings.MAX_ACTIVE_ORDERS = 100
    topup(user=buyer.user, amount=100_000)
    ModemFactory(reseller=agent.user)
    order_on(buyer, app_named("First"))
    with django_assert_num_queries(OPEN_ORDERS_BUDGET):
        assert len(open_orders(client, agent)) == 1

    ModemFactory.create_batch(4, reseller=agent.user)
    for n in range(6):
        app = app_named(f"App{n}")
        for _ in range(5):
            order_on(buyer, app)
    with django_assert_num_queries(OPEN_ORDERS_BUDGET):
        assert len(open_orders(client, agent)) == 31


def test_at_most_the_limit_oldest_first(
    client: APIClient, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orders.selectors

    monkeypatch.setattr(orders.selectors, "OPEN_ORDERS_MAX", 3)
    modem = ModemFactory(reseller=agent.user)
    app = app_named("WhatsApp")
    now = timezone.now()
    # Written directly: a modem holds one open order per application, and the point here
    # is the order of creation, not how the orders came about.
    created = [now - timedelta(minutes=m) for m in (1, 5, 3, 4, 2)]
    apps = [app, *(app_named(f"Other{n}") for n in range(4))]
    for moment, application in zip(created, apps, strict=True):
        Order.objects.create(
            buyer=agent.user,
            reseller=agent.user,
            application=application,
            operator="normal",
            modem=modem,
            phone_number=modem.phone_number,
            price=3500,
            created_at=moment,
            expires_at=now + timedelta(minutes=20),
        )

    orders = open_orders(client, agent)

    assert OPEN_ORDERS_MAX == 1000
    assert [o["created_at"] for o in orders] == [
        m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in sorted(created)[:3]
    ]
