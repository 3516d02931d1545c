"""The stock rules (docs/API.md, "Stock rules"): which modems GET /api/v1/services counts."""

import pytest
from rest_framework.test import APIClient

from modems.models import Modem
from orders.models import Application, Order
from orders.services import orders_expire, sms_receive
from tests.agent_api import ago, beat, order, stock
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent

pytestmark = pytest.mark.django_db


# --- Stock rules: what GET /api/v1/services counts -------------------------------------------


@pytest.fixture
def app() -> Application:
    return ApplicationFactory(prices={"normal": 3500, "promo": 2800})


def test_an_online_orderable_modem_is_one_in_stock(
    client: APIClient, agent: Agent, app: Application
) -> None:
    ModemFactory(reseller=agent.user)

    assert stock(client, app) == 1
    assert stock(client, app, "promo") == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"last_heartbeat_at": None},
        {"last_heartbeat_at": "stale"},
        {"can_order": False},
        {"phone_number": None},
        {"mapping": "promo"},
        {"disabled": True},
    ],
    ids=["never-seen", "offline", "can-order-false", "no-number", "other-mapping", "disabled"],
)
def test_a_modem_that_cannot_be_handed_out_is_no_stock(
    client: APIClient, agent: Agent, app: Application, fields: dict
) -> None:
    if fields.get("last_heartbeat_at") == "stale":
        fields = {"last_heartbeat_at": ago(121)}
    ModemFactory(reseller=agent.user)  # one good modem, so that 1 -> 1 proves the bad one is out
    ModemFactory(reseller=agent.user, **fields)

    assert stock(client, app) == 1


def test_a_modem_of_another_mapping_is_stock_for_that_operator_only(
    client: APIClient, agent: Agent, app: Application
) -> None:
    ModemFactory(reseller=agent.user, mapping="promo")

    assert stock(client, app, "normal") == 0
    assert stock(client, app, "promo") == 1


def test_a_modem_with_an_open_order_for_the_application_is_no_stock_for_it(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    ModemFactory(reseller=agent.user)
    assert stock(client, app) == 1

    order(client, buyer, app)

    assert stock(client, app) == 0
    response = client.post(
        "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "out_of_stock"


def test_a_completed_order_still_holds_the_modem_for_the_application(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    modem = ModemFactory(reseller=agent.user)
    placed = order(client, buyer, app)
    result = sms_receive(reseller=agent.user, uid=modem.uid, sender="App", text="Code 482913")
    assert result.order_id == placed["order_id"]

    assert stock(client, app) == 0


def test_a_modem_with_an_open_order_for_one_application_is_still_stock_for_another(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    other_app = ApplicationFactory(prices={"normal": 2000})
    ModemFactory(reseller=agent.user)

    order(client, buyer, app)

    assert stock(client, app) == 0
    assert stock(client, other_app) == 1
    second = order(client, buyer, other_app)
    assert second["phone_number"] == Modem.objects.get().phone_number


def test_a_number_that_completed_an_order_is_not_offered_for_that_application_again(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    other_app = ApplicationFactory(prices={"normal": 2000})
    modem = ModemFactory(reseller=agent.user)
    placed = order(client, buyer, app)
    sms_receive(reseller=agent.user, uid=modem.uid, sender="App", text="Code 482913")
    finished = client.post(f"/api/v1/orders/{placed['order_id']}/finish", **buyer.headers)
    assert finished.status_code == 200
    assert finished.json()["status"] == "finished"

    assert stock(client, app) == 0
    assert stock(client, other_app) == 1


def test_a_used_number_stays_used_when_it_moves_to_another_modem(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    modem = ModemFactory(reseller=agent.user, uid="COM3")
    placed = order(client, buyer, app)
    sms_receive(reseller=agent.user, uid="COM3", sender="App", text="Code 482913")
    client.post(f"/api/v1/orders/{placed['order_id']}/finish", **buyer.headers)

    moved = client.post(
        "/api/modem/sync",
        {"modems": [{"uid": "COM4", "phone_number": modem.phone_number}]},
        format="json",
        **agent.headers,
    )
    assert moved.json()["errors"] == []
    beat(client, agent, {"uid": "COM4", "can_order": True})

    assert stock(client, app) == 0


def test_a_completed_order_that_expired_leaves_its_number_used(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    modem = ModemFactory(reseller=agent.user)
    placed = order(client, buyer, app)
    sms_receive(reseller=agent.user, uid=modem.uid, sender="App", text="Code 482913")
    Order.objects.filter(pk=placed["order_id"]).update(expires_at=ago(1))
    orders_expire()

    assert Order.objects.get(pk=placed["order_id"]).status == "finished"
    assert stock(client, app) == 0


def test_a_cancelled_order_leaves_the_number_free_for_reuse(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    ModemFactory(reseller=agent.user)
    placed = order(client, buyer, app)
    assert stock(client, app) == 0

    cancelled = client.post(f"/api/v1/orders/{placed['order_id']}/cancel", **buyer.headers)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert stock(client, app) == 1
    again = order(client, buyer, app)
    assert again["phone_number"] == placed["phone_number"]


def test_an_expired_order_leaves_the_number_free_for_reuse(
    client: APIClient, agent: Agent, buyer: Buyer, app: Application
) -> None:
    ModemFactory(reseller=agent.user)
    placed = order(client, buyer, app)
    Order.objects.filter(pk=placed["order_id"]).update(expires_at=ago(1))

    assert orders_expire() == 1

    assert Order.objects.get(pk=placed["order_id"]).status == "expired"
    assert stock(client, app) == 1


def test_stock_counts_every_free_modem(client: APIClient, agent: Agent, app: Application) -> None:
    ModemFactory.create_batch(3, reseller=agent.user)
    ModemFactory.create_batch(2, reseller=make_agent().user)
    ModemFactory(reseller=agent.user, mapping="promo")

    assert stock(client, app) == 5
    assert stock(client, app, "promo") == 1
