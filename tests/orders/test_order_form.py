"""The order form's reads (issue 18, part B): the price list's order, why Buy is off, the
buyer's favourites from a bounded read, the shared catalogue copy refreshed after the
buyer's own order, and a page whose cost does not grow with the buyer's history."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.dashboard import (
    FAVOURITES_FROM_ORDERS,
    CatalogueEntry,
    OperatorOffer,
    OrderBlock,
    catalogue,
    favourite_applications,
    order_block,
    price_list,
)
from orders.models import Application
from tests.factories import ApplicationFactory, Buyer, ModemFactory, finished_order, make_agent

pytestmark = pytest.mark.django_db


def history(buyer: Buyer, applications: list[Application]) -> None:
    """Finished orders of the buyer, oldest first."""
    start = timezone.now() - timedelta(days=1)
    for n, application in enumerate(applications):
        finished_order(buyer.user, application, start + timedelta(seconds=n))


def entry(app_id: int, name: str) -> CatalogueEntry:
    return CatalogueEntry(app_id, name, [OperatorOffer("normal", 3000, 1)])


def test_favourites_are_the_latest_used_applications_most_recent_first(buyer: Buyer) -> None:
    a, b, c = ApplicationFactory.create_batch(3)
    history(buyer, [a, b, a, c, b])
    assert favourite_applications(buyer.user) == [b.pk, c.pk, a.pk]


def test_favourites_read_only_the_newest_orders(buyer: Buyer) -> None:
    old, recent = ApplicationFactory.create_batch(2)
    history(buyer, [old] + [recent] * FAVOURITES_FROM_ORDERS)
    assert favourite_applications(buyer.user) == [recent.pk]


def test_the_price_list_puts_favourites_first_and_filters_by_name() -> None:
    entries = [entry(1, "WhatsApp"), entry(2, "Telegram"), entry(3, "Google")]
    assert [e.name for e in price_list(entries, [3, 2])] == ["Google", "Telegram", "WhatsApp"]
    assert [e.name for e in price_list(entries, [], " TELE ")] == ["Telegram"]
    assert price_list(entries, [], "zzz") == []


def test_initials_come_from_the_capitals_or_the_first_letter() -> None:
    names = ["WhatsApp", "Bigo Live", "Google", "TikTok", "line"]
    assert [entry(1, name).initials for name in names] == ["WA", "BL", "G", "TT", "L"]


@pytest.mark.parametrize(
    ("offer", "balance", "expected"),
    [
        (None, 10_000, OrderBlock("no_price")),
        (OperatorOffer("normal", 3500, 0), 10_000, OrderBlock("out_of_stock")),
        (OperatorOffer("normal", 3500, 2), 0, OrderBlock("balance", 3500)),
        (OperatorOffer("normal", 3500, 2), 3000, OrderBlock("balance", 500)),
        (OperatorOffer("normal", 3500, 2), 3500, None),
    ],
)
def test_buy_is_off_only_when_the_order_cannot_succeed(
    offer: OperatorOffer | None, balance: int, expected: OrderBlock | None
) -> None:
    assert order_block(offer, balance) == expected


def test_a_refresh_replaces_the_shared_copy_at_once(settings: Any) -> None:
    settings.CATALOGUE_CACHE_SECONDS = 60
    cache.clear()
    app = ApplicationFactory(prices={"normal": 3000})
    ModemFactory(reseller=make_agent().user)
    assert catalogue()[0].stock == 1
    ModemFactory(reseller=make_agent().user)
    assert catalogue()[0].stock == 1  # the copy, a minute long
    assert catalogue(refresh=True)[0].stock == 2
    assert [e.stock for e in catalogue() if e.id == app.pk] == [2]  # everyone's copy


def test_the_dashboard_costs_the_same_for_one_and_a_hundred_past_orders(
    buyer: Buyer, settings: Any
) -> None:
    settings.CATALOGUE_CACHE_SECONDS = 60  # as in production: the catalogue is a cache read
    cache.clear()
    apps = ApplicationFactory.create_batch(3)
    client = Client()
    client.force_login(buyer.user)
    page = reverse("dashboard")
    history(buyer, apps[:1])
    client.get(page)  # warm: the session, the catalogue copy

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page).status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    one = queries()
    history(buyer, apps * 40)
    many = queries()
    assert len(many) == len(one)
    # The favourites: the buyer's newest orders only, never a scan of the whole history.
    [favourites] = [sql for sql in many if 'SELECT "orders_order"."application_id"' in sql]
    assert f"LIMIT {FAVOURITES_FROM_ORDERS}" in favourites
