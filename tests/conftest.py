"""Shared fixtures. After every test that touched the database, the invariants are
checked: each cached balance equals the sum of its entries, every ledger transaction sums
to zero, and the stock's kept counts equal a count from scratch."""

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.services import callback_settings_update
from billing.services import ledger_differences
from orders import selectors
from orders.statements import placing
from orders.statements.stock_counts import stock_differences
from tests.factories import Agent, Buyer, make_agent, make_buyer
from tests.receiver import Receiver, running_receiver

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


ONE_STATEMENT = ON_POSTGRES and settings.ONE_STATEMENT_WRITES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("postgres")
        if marker is not None and not ON_POSTGRES:
            what = marker.kwargs.get("why", "proves a concurrency guarantee with real threads")
            item.add_marker(
                pytest.mark.skip(
                    reason=f"{what} on PostgreSQL; run with DATABASE_URL=postgres://... "
                    "(.ci/run does)"
                )
            )
        marker = item.get_closest_marker("one_statement")
        if marker is not None and not ONE_STATEMENT:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"{marker.kwargs['why']}, which exists on PostgreSQL with "
                    "ONE_STATEMENT_WRITES on (.ci/run's first PostgreSQL run)"
                )
            )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SQLite's test database in a file, not in memory: the live server then gives each of
    its request threads a connection of its own, as a real server does. In memory they all
    share the test's one connection, and concurrent requests (an agent's heartbeat beside
    its SMS) fail with "bad parameter or other API misuse" or read nothing."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        folder = tmp_path_factory.mktemp("database")
        name = database.setdefault("TEST", {}).get("NAME") or "test.sqlite3"
        database["TEST"]["NAME"] = str(folder / Path(name).name)


_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_server"}


@pytest.fixture(autouse=True)
def invariants(request: pytest.FixtureRequest) -> Iterator[None]:
    uses_db = request.node.get_closest_marker("django_db") or (
        _DB_FIXTURES & set(request.fixturenames)
    )
    if not uses_db:
        yield
        return
    # Set up the database first so that this check runs before it is rolled back.
    request.getfixturevalue("_django_db_helper")
    yield
    problems = ledger_differences()
    assert not problems, "ledger invariants broken:\n" + "\n".join(problems)
    problems = stock_differences()
    assert not problems, "stock counts drifted:\n" + "\n".join(problems)


@pytest.fixture(autouse=True)
def test_settings(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests fire requests faster than any client would; the limiter has its own tests.
    settings.API_RATE_LIMIT = "0"
    # Tests read the stock right after changing it; the cache has its own test.
    settings.CATALOGUE_CACHE_SECONDS = 0
    settings.DELIVERABILITY_CACHE_SECONDS = 0
    # Nor the process's copy of the service codes: a database rolled back reuses ids.
    monkeypatch.setattr(selectors, "_offers", (-math.inf, {}))
    # Orders start their pick at the lowest id and none explores, so a test knows which
    # modem an order gets; tests/orders/test_number_routing.py runs the spread
    # (placing.next_start) and the exploration itself.
    monkeypatch.setattr(placing, "next_start", lambda: 0.0)
    settings.ROUTING_EXPLORATION_PERCENT = 0
    # The suite runs without collectstatic: serve assets from the apps, not a manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def buyer(db: None) -> Buyer:
    return make_buyer(balance=100_000)


@pytest.fixture
def agent(db: None) -> Agent:
    return make_agent()


@pytest.fixture
def receiver(settings: object) -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 (callbacks to loopback allowed for the test)."""
    settings.CALLBACK_ALLOW_PRIVATE = True
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def subscribed(buyer: Buyer, receiver: Receiver) -> Buyer:
    """The buyer, with callbacks going to the receiver."""
    callback_settings_update(user=buyer.user, callback_url=receiver.url, set_url=True)
    return buyer
