"""GET /api/v1/services: the public catalogue, its shape, and physical stock."""

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from modems.models import Modem
from orders import selectors
from orders.models import Application, Order
from orders.selectors import CATALOGUE_CACHE_KEY, CATALOGUE_REFRESH_KEY
from orders.services import order_create, order_finish, sms_receive
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, offline_since

SERVICES = "/api/v1/services"
# A pool with no decided order yet: every deliverability figure null (tests/orders/
# test_deliverability.py has the figures).
NO_FIGURES = {
    "orders": 0,
    "success_rate": None,
    "median_seconds_to_sms": None,
    "p90_seconds_to_sms": None,
}


def pool(price: int, stock: int) -> dict[str, Any]:
    return {
        "price": price,
        "stock": stock,
        "success_rate": None,
        "median_seconds_to_sms": None,
        "deliverability": {"24h": NO_FIGURES, "7d": NO_FIGURES},
    }


def catalogue(client: APIClient, **headers: str) -> list[dict[str, Any]]:
    response = client.get(SERVICES, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def entry(client: APIClient, app: Application) -> dict[str, Any]:
    return next(item for item in catalogue(client) if item["id"] == app.pk)


def test_services_is_public_and_empty_without_applications(client: APIClient, db: None) -> None:
    assert catalogue(client) == []


def test_services_ignores_key_headers_it_is_sent(client: APIClient, db: None) -> None:
    app = ApplicationFactory()

    items = catalogue(client, HTTP_X_API_KEY="zk_unknown", HTTP_X_AGENT_KEY="nonsense")

    assert [item["id"] for item in items] == [app.pk]


def test_services_has_the_shape_of_the_contract(client: APIClient, agent: Agent) -> None:
    app = ApplicationFactory(
        name="WhatsApp", code="whatsapp", prices={"normal": 3500, "promo": 2800, "special": 5000}
    )
    for _ in range(3):
        ModemFactory(reseller=agent.user, mapping="normal")
    ModemFactory(reseller=agent.user, mapping="promo")

    assert catalogue(client) == [
        {
            "id": app.pk,
            "name": "WhatsApp",
            "code": "whatsapp",
            "price": 3500,
            "stock": 3,
            "operators": {
                "normal": pool(3500, 3),
                "promo": pool(2800, 1),
                "special": pool(5000, 0),
            },
        }
    ]


def test_values_are_json_integers(client: APIClient, agent: Agent) -> None:
    ApplicationFactory(prices={"normal": 3500})
    ModemFactory(reseller=agent.user)

    item = catalogue(client)[0]

    normal = item["operators"]["normal"]
    for value in (item["id"], item["price"], item["stock"], normal["price"], normal["stock"]):
        assert type(value) is int


def test_an_operator_with_no_price_is_absent(client: APIClient, db: None) -> None:
    app = ApplicationFactory(prices={"normal": 3500, "special": 5000})

    assert set(entry(client, app)["operators"]) == {"normal", "special"}


def test_top_level_price_and_stock_are_the_normal_operators(
    client: APIClient, agent: Agent
) -> None:
    app = ApplicationFactory(prices={"normal": 4000, "promo": 1000})
    ModemFactory(reseller=agent.user, mapping="normal")
    for _ in range(2):
        ModemFactory(reseller=agent.user, mapping="promo")

    item = entry(client, app)

    assert (item["price"], item["stock"]) == (4000, 1)
    assert item["operators"]["promo"] == pool(1000, 2)


def test_disabled_applications_are_absent(client: APIClient, db: None) -> None:
    shown = ApplicationFactory()
    ApplicationFactory(enabled=False)

    assert [item["id"] for item in catalogue(client)] == [shown.pk]


def test_applications_are_listed_in_id_order(client: APIClient, db: None) -> None:
    apps = [ApplicationFactory() for _ in range(4)]

    assert [item["id"] for item in catalogue(client)] == [a.pk for a in apps]


@pytest.mark.parametrize(
    "modem_fields",
    [
        {"last_heartbeat_at": None},
        {"last_heartbeat_at": "offline"},
        {"can_order": False},
        {"disabled": True},
        {"phone_number": None},
        {"mapping": "special"},
    ],
    ids=["never-seen", "offline", "cannot-order", "disabled-by-staff", "no-number", "other-pool"],
)
def test_stock_counts_only_online_orderable_modems(
    client: APIClient, agent: Agent, modem_fields: dict[str, Any]
) -> None:
    app = ApplicationFactory(prices={"normal": 3500})
    ModemFactory(reseller=agent.user)
    if modem_fields.get("last_heartbeat_at") == "offline":
        modem_fields = {"last_heartbeat_at": offline_since(121)}
    ModemFactory(reseller=agent.user, **modem_fields)

    assert entry(client, app)["stock"] == 1


def test_a_modem_with_an_open_order_is_out_of_stock_for_that_application_only(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    ordered = ApplicationFactory()
    other = ApplicationFactory()
    ModemFactory(reseller=agent.user)
    order_create(buyer=buyer.user, application_id=ordered.pk)

    assert entry(client, ordered)["stock"] == 0
    assert entry(client, other)["stock"] == 1


def test_a_number_that_completed_an_order_is_not_stock_for_that_application_again(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    used_for = ApplicationFactory()
    other = ApplicationFactory()
    modem = ModemFactory(reseller=agent.user)
    created = order_create(buyer=buyer.user, application_id=used_for.pk)
    assert sms_receive(reseller=agent.user, uid=modem.uid, sender="x", text="code 123456").matched
    order_finish(buyer=buyer.user, order_id=created.order.pk)

    assert entry(client, used_for)["stock"] == 0
    assert entry(client, other)["stock"] == 1


def test_a_cancelled_order_gives_its_number_back_to_stock(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    app = ApplicationFactory()
    ModemFactory(reseller=agent.user)
    created = order_create(buyer=buyer.user, application_id=app.pk)
    assert entry(client, app)["stock"] == 0

    response = client.post(f"/api/v1/orders/{created.order.pk}/cancel", **buyer.headers)

    assert response.status_code == 200
    assert entry(client, app)["stock"] == 1


def test_stock_is_what_can_be_ordered(client: APIClient, buyer: Buyer, agent: Agent) -> None:
    app = ApplicationFactory()
    for _ in range(2):
        ModemFactory(reseller=agent.user)
    ModemFactory(reseller=agent.user, can_order=False)

    ordered = 0
    while order_attempt(client, buyer, app) == 201:
        ordered += 1
        assert ordered <= 3

    assert ordered == 2
    assert Order.objects.count() == 2


def order_attempt(client: APIClient, buyer: Buyer, app: Application) -> int:
    return client.post(
        "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
    ).status_code


def _catalogue_of(count: int, reseller: Any) -> None:
    Application.objects.all().delete()
    Modem.objects.all().delete()
    for _ in range(count):
        ApplicationFactory(prices={"normal": 3500, "promo": 2800, "special": 5000})
    for mapping in ("normal", "promo", "special"):
        ModemFactory(reseller=reseller, mapping=mapping, last_heartbeat_at=timezone.now())


def test_the_number_of_queries_does_not_grow_with_the_applications(
    client: APIClient, agent: Agent
) -> None:
    counts = []
    for size in (5, 50):
        _catalogue_of(size, agent.user)
        with CaptureQueriesContext(connection) as queries:
            items = catalogue(client)
        assert len(items) == size
        assert all(item["stock"] == 1 for item in items)
        counts.append(len(queries))

    assert counts[0] == counts[1], counts


class TestTheCachedCopy:
    """CATALOGUE_CACHE_SECONDS: one copy for every worker; when it is due, one worker
    computes the next while the others answer with it."""

    @pytest.fixture(autouse=True)
    def cached(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[float]:
        settings.CATALOGUE_CACHE_SECONDS = 2
        cache.clear()
        now = [1_000_000.0]
        monkeypatch.setattr(selectors, "_clock", lambda: now[0])
        return now

    def stock_of(self, client: APIClient, app: Application) -> int:
        return entry(client, app)["stock"]

    @pytest.fixture
    def app(self, client: APIClient, agent: Agent) -> Application:
        """An application whose stock was 1 when the copy was made, and is 2 now."""
        app = ApplicationFactory(prices={"normal": 3000})
        ModemFactory(reseller=agent.user)
        assert self.stock_of(client, app) == 1
        ModemFactory(reseller=agent.user)
        return app

    def test_it_is_answered_until_due_then_computed_again(
        self, client: APIClient, app: Application, cached: list[float]
    ) -> None:
        cached[0] += 1.9
        assert self.stock_of(client, app) == 1  # the copy, 1.9 s old
        cached[0] += 0.2
        assert self.stock_of(client, app) == 2  # due: computed again

    def test_a_due_copy_is_answered_while_another_worker_computes_the_next(
        self, client: APIClient, app: Application, cached: list[float]
    ) -> None:
        cached[0] += 2.5
        assert cache.add(CATALOGUE_REFRESH_KEY, True)  # another worker is computing

        with CaptureQueriesContext(connection) as captured:
            assert self.stock_of(client, app) == 1
        assert not [q for q in captured.captured_queries if "modems_modem" in q["sql"]]

        cache.delete(CATALOGUE_REFRESH_KEY)  # it is done (or gave up)
        assert self.stock_of(client, app) == 2

    def test_without_a_copy_every_worker_computes(
        self, client: APIClient, app: Application
    ) -> None:
        cache.add(CATALOGUE_REFRESH_KEY, True)
        cache.delete(CATALOGUE_CACHE_KEY)  # expired: twice CATALOGUE_CACHE_SECONDS

        assert self.stock_of(client, app) == 2
