"""Query budgets of the hot paths (issue: performance). Batch endpoints cost the same for 1
and for 1,000 modems; the catalogue the same for 5 and for 50 applications; the order
operations stay within a small fixed number of queries (savepoints counted)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from modems.models import Modem
from tests.factories import (
    Agent,
    ApplicationFactory,
    Buyer,
    ModemFactory,
    make_agent,
    make_buyer,
)
from zerotp.db import on_postgresql, writes_in_one_statement

pytestmark = pytest.mark.django_db

# Budgets, counted as the database sees them in steady state (an existing wallet and
# platform accounts). The test's own transaction turns the service's BEGIN into a
# SAVEPOINT pair, so these include two statements a production request does not send.
# On PostgreSQL an order is made, and cancelled, by one statement that also moves its money
# and needs no transaction around it; on the portable path (SQLite, or PostgreSQL with
# ONE_STATEMENT_WRITES=false) a transaction runs the steps and books the money one row per
# statement (a transaction, its legs, its entries). Hence two figures:
#   create: key, then the wallet lock and the order at once (sent together: one round
#           trip); or context and wallet lock, order on a free modem, hold
#   cancel: key, then the cancel (and its refund)
#   inbound SMS: key, modem lock, duplicate check, open orders on the line, SMS insert,
#                completion, capture, message insert
_PATH = "one statement" if writes_in_one_statement() else "portable"
# (PostgreSQL's portable path locks the wallet with a statement of its own: one more)
ORDER_CREATE_BUDGET = {"one statement": 3, "portable": 10 if on_postgresql() else 9}[_PATH]
ORDER_STATUS_BUDGET = 2
ORDER_CANCEL_BUDGET = {"one statement": 2, "portable": 8}[_PATH]
INBOUND_SMS_BUDGET = {"one statement": 10, "portable": 14}[_PATH]
# The stock, the deliverability figures (each: PostgreSQL first adds the triggers' changes
# into the counts; the figures are cached a minute outside the tests), the applications,
# their prices
SERVICES_BUDGET = 6 if on_postgresql() else 4
BALANCE_BUDGET = 2


def queries(call: Callable[[], Response], status: int = 200) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == status, response.json()
    return len(captured.captured_queries)


def modems_of(agent: Agent, count: int) -> list[Modem]:
    return Modem.objects.bulk_create(
        Modem(
            reseller=agent.user,
            uid=f"COM{n}",
            phone_number=number(agent, n),
            last_heartbeat_at=timezone.now(),
        )
        for n in range(count)
    )


def number(agent: Agent, n: int) -> str:
    return f"628{agent.user.pk:03d}{n:06d}"


def post(client: APIClient, path: str, body: object, agent: Agent) -> Callable[[], Response]:
    return lambda: client.post(path, body, format="json", **agent.headers)


def test_heartbeat_costs_the_same_for_one_and_a_thousand_modems(client: APIClient) -> None:
    small, large = make_agent(), make_agent()
    modems_of(small, 1)
    modems_of(large, 1000)
    beat = "/api/modem/heartbeat"

    one = queries(post(client, beat, {"modems": [{"uid": "COM0", "signal": 50}]}, small))
    many = queries(
        post(
            client, beat, {"modems": [{"uid": f"COM{n}", "signal": 50} for n in range(1000)]}, large
        )
    )

    # the key, the reseller's batch lock, the UPDATE, and the transaction around them
    assert one == many <= 5


@pytest.mark.parametrize("change", [False, True], ids=["unchanged", "changed"])
def test_sync_costs_the_same_for_one_and_a_thousand_modems(client: APIClient, change: bool) -> None:
    small, large = make_agent(), make_agent()
    modems_of(small, 1)
    modems_of(large, 1000)

    def body(agent: Agent, count: int) -> dict:
        return {
            "modems": [
                {
                    "uid": f"COM{n}",
                    "phone_number": number(agent, n),
                    "provider": "XL" if change else "",
                    "mapping": "normal",
                }
                for n in range(count)
            ]
        }

    one = queries(post(client, "/api/modem/sync", body(small, 1), small))
    many = queries(post(client, "/api/modem/sync", body(large, 1000), large))

    assert one == many <= (8 if change else 2)


def test_creating_a_thousand_modems_costs_what_creating_one_does(client: APIClient) -> None:
    small, large = make_agent(), make_agent()
    one = queries(
        post(
            client,
            "/api/modem/sync",
            {"modems": [{"uid": "A", "phone_number": "6281100000000"}]},
            small,
        )
    )
    many = queries(
        post(
            client,
            "/api/modem/sync",
            {"modems": [{"uid": f"B{n}", "phone_number": f"62813{n:07d}"} for n in range(1000)]},
            large,
        )
    )
    assert one == many


def test_the_catalogue_costs_the_same_for_five_and_fifty_applications(client: APIClient) -> None:
    ModemFactory.create_batch(3, reseller=make_agent().user)
    ApplicationFactory.create_batch(5, prices={"normal": 3000, "promo": 2000})
    five = queries(lambda: client.get("/api/v1/services"))
    ApplicationFactory.create_batch(45, prices={"normal": 3000, "special": 5000})
    fifty = queries(lambda: client.get("/api/v1/services"))
    assert len(client.get("/api/v1/services").json()) == 50
    assert five == fifty == SERVICES_BUDGET


def test_the_order_operations_stay_within_their_budgets(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    app = ApplicationFactory(prices={"normal": 3500})
    modems = ModemFactory.create_batch(3, reseller=agent.user)

    def create() -> Response:
        return client.post(
            "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
        )

    # Warm up: the first movement creates the platform accounts.
    first = create().json()["order_id"]
    client.post(f"/api/v1/orders/{first}/cancel", **buyer.headers)

    assert queries(lambda: client.get("/api/v1/balance", **buyer.headers)) <= BALANCE_BUDGET
    assert queries(create, 201) <= ORDER_CREATE_BUDGET
    order_id = client.get("/api/v1/orders", **buyer.headers).json()["results"][0]["order_id"]
    status = queries(lambda: client.get(f"/api/v1/orders/{order_id}", **buyer.headers))
    assert status <= ORDER_STATUS_BUDGET
    assert (
        queries(lambda: client.post(f"/api/v1/orders/{order_id}/cancel", **buyer.headers))
        <= ORDER_CANCEL_BUDGET
    )

    create()  # lands on the first modem; its SMS creates the reseller's wallet and revenue
    warm = {"uid": modems[0].uid, "from": "INFO", "text": "Your code is 111111"}
    client.post("/api/modem/inbound-sms", warm, format="json", **agent.headers)
    create()  # lands on the second modem
    sms = {"uid": modems[1].uid, "from": "INFO", "text": "Your code is 482913"}
    sms_queries = queries(
        lambda: client.post("/api/modem/inbound-sms", sms, format="json", **agent.headers)
    )
    assert sms_queries <= INBOUND_SMS_BUDGET


def test_the_catalogue_is_cached_for_a_couple_of_seconds(
    client: APIClient, settings: object
) -> None:
    from django.core.cache import cache

    settings.CATALOGUE_CACHE_SECONDS = 2
    cache.clear()
    app = ApplicationFactory(prices={"normal": 3000})
    ModemFactory(reseller=make_agent().user)
    first = client.get("/api/v1/services").json()
    assert queries(lambda: client.get("/api/v1/services")) <= 1  # one cache read
    assert client.get("/api/v1/services").json() == first
    assert [a["stock"] for a in first if a["id"] == app.pk] == [1]


def test_reading_a_completed_order_with_its_messages_is_one_query_after_authentication(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    app = ApplicationFactory(prices={"normal": 3500})
    modem = ModemFactory(reseller=agent.user)
    order_id = client.post(
        "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
    ).json()["order_id"]
    for code in ("111111", "222222"):
        sms = {"uid": modem.uid, "from": "INFO", "text": f"Your code is {code}"}
        client.post("/api/modem/inbound-sms", sms, format="json", **agent.headers)

    read = lambda: client.get(f"/api/v1/orders/{order_id}", **buyer.headers)  # noqa: E731
    assert queries(read) == ORDER_STATUS_BUDGET
    body = read().json()
    assert [m["otp_code"] for m in body["messages"]] == ["111111", "222222"]
    assert body["otp_code"] == "222222" and body["status"] == "completed"


def test_the_sms_activate_dialect_costs_what_its_rest_twins_do(
    client: APIClient, buyer: Buyer, agent: Agent, settings: Any
) -> None:
    """getNumber, getStatus and setStatus 8 against POST /orders, GET /orders/{id} and
    cancel: the same statements, the key read from a parameter instead of a header. The
    service code is found in the process's copy of the catalogue, warm as in production."""
    settings.CATALOGUE_CACHE_SECONDS = 60
    app = ApplicationFactory(service_code="wa", prices={"normal": 3500})
    # Three numbers: three cancels in a row rest a number from the application.
    ModemFactory.create_batch(3, reseller=agent.user)
    handler = "/stubs/handler_api.php"

    def dialect(action: str, **params: object) -> Callable[[], Response]:
        return lambda: client.get(handler, {"api_key": buyer.key, "action": action, **params})

    def rest_create() -> Response:
        return client.post(
            "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
        )

    def rest_cancel(order_id: int) -> Callable[[], Response]:
        return lambda: client.post(f"/api/v1/orders/{order_id}/cancel", **buyer.headers)

    # Warm up: the platform accounts, the copy of the service codes.
    order_id = int(dialect("getNumber", service="wa")().content.split(b":")[1])
    dialect("setStatus", id=order_id, status=8)()

    with CaptureQueriesContext(connection) as number:
        order_id = int(dialect("getNumber", service="wa")().content.split(b":")[1])
    with CaptureQueriesContext(connection) as cancel:
        assert dialect("setStatus", id=order_id, status=8)().content == b"ACCESS_CANCEL"
    with CaptureQueriesContext(connection) as rest_number:
        order_id = rest_create().json()["order_id"]
    rest_cancels = queries(rest_cancel(order_id))
    assert len(number) == len(rest_number) <= ORDER_CREATE_BUDGET
    assert len(cancel) == rest_cancels <= ORDER_CANCEL_BUDGET

    order_id = int(dialect("getNumber", service="wa")().content.split(b":")[1])
    modem = Modem.objects.get(orders__id=order_id)
    sms = {"uid": modem.uid, "from": "INFO", "text": "Your code is 482913"}
    client.post("/api/modem/inbound-sms", sms, format="json", **agent.headers)
    with CaptureQueriesContext(connection) as status:
        assert dialect("getStatus", id=order_id)().content == b"STATUS_OK:482913"
    rest_status = queries(lambda: client.get(f"/api/v1/orders/{order_id}", **buyer.headers))
    assert len(status) == rest_status == ORDER_STATUS_BUDGET


# PostgreSQL parses and plans a statement anew each time unless it is prepared; planning
# the order statement cost more than running it (PERFORMANCE.md). zerotp.db prepares the
# hot paths' statements; PostgreSQL then plans them five more times for the values at hand
# before it may settle on one plan for all values, and keeps planning anew if that plan's
# estimate looks worse.
PLANNED_ONCE = {
    "order": "WITH w AS",  # orders.statements.placing.order_at_once
    "cancel": "WITH cancelled AS",  # orders.statements.cancelling.cancel_pending
}


@pytest.mark.one_statement(why="checks PostgreSQL's plan cache of the one-statement writes")
@pytest.mark.parametrize("scan_guard", [True, False])
def test_the_order_path_runs_on_prepared_statements_planned_once(
    client: APIClient, agent: Agent, settings: Any, scan_guard: bool
) -> None:
    settings.SCAN_GUARD = scan_guard
    app = ApplicationFactory(prices={"normal": 3500, "promo": 4000})
    for operator in ("normal", "promo"):
        # Five numbers: three cancels in a row rest a number from the application.
        ModemFactory.create_batch(5, reseller=agent.user, mapping=operator)
        # A buyer per operator: twelve orders without an SMS stay under the scan guard.
        buyer = make_buyer(balance=100_000)
        for _ in range(12):
            created = client.post(
                "/api/v1/orders",
                {"application_id": app.pk, "operator": operator},
                format="json",
                **buyer.headers,
            )
            assert created.status_code == 201, created.json()
            order_id = created.json()["order_id"]
            cancelled = client.post(f"/api/v1/orders/{order_id}/cancel", **buyer.headers)
            assert cancelled.status_code == 200, cancelled.json()

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        prepared = cursor.fetchall()
    for name, start in PLANNED_ONCE.items():
        plans = [(g, c) for text, g, c in prepared if text.lstrip().startswith(start)]
        # the order statement once per operator (the operator is written into its text)
        assert len(plans) == (2 if name == "order" else 1), (name, prepared)
        for generic, custom in plans:
            assert generic > 0 and custom <= 5, (name, generic, custom)
    # The ORM's statements (the API-key lookup of every request among them) are not.
    assert not [text for text, _, _ in prepared if '"accounts_apikey"' in text]
