"""Tenancy and keys, beyond tests/accounts/test_keys_and_authentication.py and the
per-endpoint tests (which prove a stranger's GET/cancel/finish is a 404, the callback log
is private, and a reseller cannot touch another's modem by uid or number):

- a stranger's order or callback answers exactly what an unknown id answers, byte for
  byte, in every state and for every action, and changes nothing;
- an agent cannot learn that another reseller's uid exists, nor complete another
  reseller's order by naming its number; two resellers racing for one number end with
  one holder;
- no table holds a full key, whatever the account did;
- a replaced key and a disabled account are refused on every buyer and agent endpoint of
  the schema, and change nothing."""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import callback_settings_update, key_issue
from billing.services import topup, wallet_balance
from billing.topups import topup_create
from modems.models import Modem
from modems.services import modems_sync
from orders.models import CallbackDelivery, Order, OrderStatus
from orders.services import order_cancel, order_create, sms_receive
from tests.concurrency import run_at_once
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer
from tests.reliability.conftest import NetworkLog, snapshot
from tests.test_api_errors import assert_envelope

ORDERS = "/api/v1/orders"


def without(text: bytes, *values: object) -> bytes:
    """The answer with the ids it names blanked, to compare two answers about two ids."""
    for value in values:
        text = text.replace(str(value).encode(), b"<id>")
    return text


@dataclass
class Shop:
    owner: Buyer
    stranger: Buyer
    agent: Agent
    orders: dict[str, int]  # state -> order id of the owner
    delivery: int


@pytest.fixture
def shop(db: None, no_network: NetworkLog) -> Shop:
    owner, stranger = make_buyer(balance=100_000), make_buyer(balance=100_000)
    agent = make_agent()
    app = ApplicationFactory(prices={"normal": 3500})
    modem = ModemFactory(reseller=agent.user)
    ModemFactory.create_batch(3, reseller=agent.user)
    callback_settings_update(
        user=owner.user, callback_url="https://hooks.example.com/otp", set_url=True
    )
    ids = [order_create(buyer=owner.user, application_id=app.pk).order.pk for _ in range(3)]
    sms_receive(reseller=agent.user, uid=modem.uid, sender="WA", text="Your code is 123456")
    order_cancel(buyer=owner.user, order_id=ids[2])
    delivery = CallbackDelivery.objects.get(buyer=owner.user).pk
    states = dict(zip(["completed", "pending", "cancelled"], ids, strict=True))
    return Shop(owner, stranger, agent, states, delivery)


def unknown_id() -> int:
    return (Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


ACTIONS = {
    "read": lambda c, h, i: c.get(f"{ORDERS}/{i}", **h),
    "cancel": lambda c, h, i: c.post(f"{ORDERS}/{i}/cancel", **h),
    "finish": lambda c, h, i: c.post(f"{ORDERS}/{i}/finish", **h),
    "callback-log": lambda c, h, i: c.get(f"/api/v1/callbacks?order_id={i}", **h),
}


@pytest.mark.parametrize("state", ["pending", "completed", "cancelled"])
@pytest.mark.parametrize("action", ACTIONS)
def test_a_strangers_order_answers_exactly_like_an_unknown_one(
    shop: Shop, state: str, action: str
) -> None:
    theirs, nobodys = shop.orders[state], unknown_id()
    call = ACTIONS[action]
    before = snapshot()

    seen = call(APIClient(), shop.stranger.headers, theirs)
    unseen = call(APIClient(), shop.stranger.headers, nobodys)

    assert seen.status_code == unseen.status_code
    assert seen.status_code in (200, 404)  # 200: the callback log, empty for both
    assert seen["Content-Type"] == unseen["Content-Type"]
    assert without(seen.content, theirs) == without(unseen.content, nobodys)
    assert snapshot() == before


def test_a_strangers_order_never_shows_in_any_list_filter(shop: Shop) -> None:
    client = APIClient()

    for status in [None, *OrderStatus.values]:
        params = {"limit": 200} | ({"status": status} if status else {})
        listed = client.get(ORDERS, params, **shop.stranger.headers)
        assert listed.status_code == 200
        assert listed.json() == {"results": [], "next": None}
    log = client.get("/api/v1/callbacks", **shop.stranger.headers)
    assert log.json() == {"results": [], "next": None}


def test_a_strangers_callback_cannot_be_resent_and_looks_unknown(shop: Shop) -> None:
    nobodys = CallbackDelivery.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000
    before = snapshot()

    seen = APIClient().post(f"/api/v1/callbacks/{shop.delivery}/resend", **shop.stranger.headers)
    unseen = APIClient().post(f"/api/v1/callbacks/{nobodys}/resend", **shop.stranger.headers)

    assert_envelope(seen, 404, "not_found")
    assert without(seen.content, shop.delivery) == without(unseen.content, nobodys)
    assert snapshot() == before


# --- resellers ------------------------------------------------------------------------------


@pytest.fixture
def two_pools(db: None) -> dict[str, Any]:
    """Reseller A with a modem holding a pending order; reseller B with a modem of its own."""
    a, b = make_agent(), make_agent()
    theirs = ModemFactory(reseller=a.user, uid="SIM-A1")
    ModemFactory(reseller=b.user, uid="SIM-B1")
    buyer = make_buyer(balance=10_000)
    app = ApplicationFactory(prices={"normal": 3500})
    order_id = order_create(buyer=buyer.user, application_id=app.pk).order.pk
    return {"a": a, "b": b, "theirs": theirs, "buyer": buyer, "order_id": order_id}


def test_an_sms_for_another_resellers_uid_answers_exactly_like_an_unknown_uid(
    two_pools: dict[str, Any],
) -> None:
    b = two_pools["b"]
    body = {"from": "WhatsApp", "text": "Your code is 123456"}
    before = snapshot()

    seen = APIClient().post(
        "/api/modem/inbound-sms", {**body, "uid": "SIM-A1"}, format="json", **b.headers
    )
    unseen = APIClient().post(
        "/api/modem/inbound-sms", {**body, "uid": "SIM-ZZ"}, format="json", **b.headers
    )

    assert_envelope(seen, 404, "not_found")
    assert without(seen.content, "SIM-A1") == without(unseen.content, "SIM-ZZ")
    assert snapshot() == before


def test_naming_another_resellers_number_on_my_own_modem_never_reaches_their_order(
    two_pools: dict[str, Any],
) -> None:
    b = two_pools["b"]
    body = {
        "uid": "SIM-B1",
        "phone_number": two_pools["theirs"].phone_number,
        "from": "WhatsApp",
        "text": "Your code is 123456",
    }

    response = APIClient().post("/api/modem/inbound-sms", body, format="json", **b.headers)

    assert response.json() == {"matched": False, "order_id": None, "otp": None}
    assert Order.objects.get(pk=two_pools["order_id"]).status == OrderStatus.PENDING
    assert wallet_balance(b.user) == wallet_balance(two_pools["a"].user) == 0


def test_a_sync_cannot_take_a_number_that_another_resellers_modem_holds_with_an_open_order(
    two_pools: dict[str, Any],
) -> None:
    b = two_pools["b"]
    number = two_pools["theirs"].phone_number
    items = [{"uid": "SIM-B1", "phone_number": number}, {"uid": "SIM-B2", "phone_number": number}]

    response = APIClient().post("/api/modem/sync", {"modems": items}, format="json", **b.headers)

    assert [e["code"] for e in response.json()["errors"]] == ["phone_number_conflict"] * 2
    assert Modem.objects.get(phone_number=number).pk == two_pools["theirs"].pk
    assert Order.objects.get(pk=two_pools["order_id"]).phone_number == number


NUMBER_TRIALS = 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_resellers_racing_for_one_number_end_with_exactly_one_holder() -> None:
    a, b = make_agent(), make_agent()
    winners: list[str] = []

    for trial in range(NUMBER_TRIALS):
        number = f"6281966{trial:05d}"

        def claim(agent: Agent, uid: str, number: str = number) -> Any:
            return modems_sync(reseller=agent.user, items=[{"uid": uid, "phone_number": number}])

        results = run_at_once(
            [lambda t=trial: claim(a, f"A{t}"), lambda t=trial: claim(b, f"B{t}")]
        )

        assert not [r for r in results if isinstance(r, BaseException)], results
        holders = list(Modem.objects.filter(phone_number=number).values_list("uid", flat=True))
        assert len(holders) == 1
        won = [r for r in results if r.synced == 1]
        lost = [r for r in results if r.synced == 0]
        assert len(won) == len(lost) == 1
        assert [e["code"] for e in lost[0].errors] == ["phone_number_conflict"]
        winners.append(holders[0][0])

    print(f"number race winners over {NUMBER_TRIALS} trials: {sorted(winners)}")


# --- keys -----------------------------------------------------------------------------------


def every_stored_text() -> list[tuple[str, str]]:
    """(table, row) for every row of every table in the database, as text."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows += [(table, repr(row)) for row in cursor.fetchall()]
    return rows


@pytest.mark.django_db
def test_no_row_of_any_table_holds_a_full_key_after_a_busy_day(
    settings: Any, no_network: NetworkLog
) -> None:
    settings.API_RATE_LIMIT = "1000/s"  # the limiter writes its counters to the cache table
    app = ApplicationFactory(prices={"normal": 3500})
    buyer, agent = make_buyer(balance=100_000), make_agent()
    ModemFactory(reseller=agent.user, uid="COM1")
    client = APIClient()
    keys = [buyer.key, agent.key]
    callback_settings_update(
        user=buyer.user, callback_url="https://hooks.example.com/otp", set_url=True
    )
    order = client.post(
        ORDERS,
        {"application_id": app.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
        **buyer.headers,
    ).json()
    client.post(
        "/api/modem/inbound-sms",
        {"uid": "COM1", "from": "WA", "text": "Your code is 123456"},
        format="json",
        **agent.headers,
    )
    client.get(f"{ORDERS}/{order['order_id']}", **buyer.headers)
    client.post("/api/v1/callbacks/test", **buyer.headers)
    client.post(
        "/api/modem/heartbeat", {"modems": [{"uid": "COM1"}]}, format="json", **agent.headers
    )
    # Keys replaced: the old ones are kept as revoked rows; the new ones are used too.
    issued = key_issue(user=buyer.user, kind=ApiKey.Kind.API).key
    client.get("/api/v1/balance", HTTP_X_API_KEY=issued)
    reissued = key_issue(user=agent.user, kind=ApiKey.Kind.AGENT).key
    client.post("/api/modem/heartbeat", {"modems": []}, format="json", HTTP_X_AGENT_KEY=reissued)
    keys += [issued, reissued]
    assert ApiKey.objects.count() >= 4

    stored = every_stored_text()

    assert {table for table, _ in stored} >= {"accounts_apikey", "zerotp_cache"}
    for key in keys:
        secret = key.split("_", 2)[2]
        assert len(secret) >= 32
        leaks = [table for table, row in stored if secret in row or secret[:24] in row]
        assert leaks == [], f"a key's secret is stored in {sorted(set(leaks))}"


BUYER_ENDPOINTS: dict[str, Callable[[APIClient, dict, "Ids"], Any]] = {
    "GET /api/v1/orders": lambda c, h, i: c.get(ORDERS, **h),
    "POST /api/v1/orders": lambda c, h, i: c.post(
        ORDERS, {"application_id": i.app}, format="json", **h
    ),
    "GET /api/v1/orders/{order_id}": lambda c, h, i: c.get(f"{ORDERS}/{i.order}", **h),
    "POST /api/v1/orders/{order_id}/cancel": lambda c, h, i: c.post(
        f"{ORDERS}/{i.order}/cancel", **h
    ),
    "POST /api/v1/orders/{order_id}/finish": lambda c, h, i: c.post(
        f"{ORDERS}/{i.completed}/finish", **h
    ),
    "GET /api/v1/balance": lambda c, h, i: c.get("/api/v1/balance", **h),
    "GET /api/v1/account": lambda c, h, i: c.get("/api/v1/account", **h),
    "PATCH /api/v1/account": lambda c, h, i: c.patch(
        "/api/v1/account", {"rotate_callback_secret": True}, format="json", **h
    ),
    "GET /api/v1/callbacks": lambda c, h, i: c.get("/api/v1/callbacks", **h),
    "POST /api/v1/callbacks/test": lambda c, h, i: c.post("/api/v1/callbacks/test", **h),
    "POST /api/v1/callbacks/{delivery_id}/resend": lambda c, h, i: c.post(
        f"/api/v1/callbacks/{i.delivery}/resend", **h
    ),
    "POST /api/v1/topups": lambda c, h, i: c.post(
        "/api/v1/topups", {"amount": 20_000, "provider": "manual"}, format="json", **h
    ),
    "GET /api/v1/topups": lambda c, h, i: c.get("/api/v1/topups", **h),
    "GET /api/v1/topups/{topup_id}": lambda c, h, i: c.get(f"/api/v1/topups/{i.topup}", **h),
    "POST /api/v1/withdrawals": lambda c, h, i: c.post(
        "/api/v1/withdrawals",
        {
            "amount": 50_000,
            "method": "bank",
            "account_name": "Budi",
            "account_number": "1234567890",
            "bank_or_wallet": "BCA",
        },
        format="json",
        **h,
    ),
    "GET /api/v1/withdrawals": lambda c, h, i: c.get("/api/v1/withdrawals", **h),
}
AGENT_ENDPOINTS: dict[str, Callable[[APIClient, dict, "Ids"], Any]] = {
    "POST /api/modem/sync": lambda c, h, i: c.post(
        "/api/modem/sync",
        {"modems": [{"uid": "COM1", "signal": 3}, {"uid": "NEW", "phone_number": "628999"}]},
        format="json",
        **h,
    ),
    "POST /api/modem/heartbeat": lambda c, h, i: c.post(
        "/api/modem/heartbeat", {"modems": [{"uid": "COM1", "signal": 3}]}, format="json", **h
    ),
    "POST /api/modem/inbound-sms": lambda c, h, i: c.post(
        "/api/modem/inbound-sms",
        {"uid": "COM2", "from": "WA", "text": "Your code is 654321"},
        format="json",
        **h,
    ),
    "GET /api/modem/orders": lambda c, h, i: c.get("/api/modem/orders", **h),
}


@dataclass
class Ids:
    app: int
    order: int
    completed: int
    delivery: int
    topup: int


@pytest.fixture
def account(db: None, no_network: NetworkLog) -> tuple[User, dict[str, str], Ids]:
    """A reseller who also buys: both keys, a pending and a completed order, a callback."""
    agent = make_agent()
    user = agent.user
    topup(user=user, amount=100_000)
    api_key = key_issue(user=user, kind=ApiKey.Kind.API).key
    app = ApplicationFactory(prices={"normal": 3500})
    ModemFactory(reseller=user, uid="COM1")
    ModemFactory(reseller=user, uid="COM2")
    ModemFactory(reseller=user, uid="COM3")
    callback_settings_update(user=user, callback_url="https://hooks.example.com/otp", set_url=True)
    completed = order_create(buyer=user, application_id=app.pk).order.pk
    sms_receive(reseller=user, uid="COM1", sender="WA", text="Your code is 111222")
    pending = order_create(buyer=user, application_id=app.pk).order.pk
    delivery = CallbackDelivery.objects.get(order_id=completed).pk
    headers = {"HTTP_X_API_KEY": api_key, "HTTP_X_AGENT_KEY": agent.key}
    topup_id = topup_create(user=user, amount=30_000, provider="manual").pk
    ids = Ids(app.pk, pending, completed, delivery, topup_id)
    return User.objects.get(pk=user.pk), headers, ids


def test_the_endpoint_tables_cover_every_keyed_operation_of_the_schema() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if operation.get("security") != [] and path != "/api/v1/services"
    }

    assert operations == set(BUYER_ENDPOINTS) | set(AGENT_ENDPOINTS)


ALL_ENDPOINTS = [(name, BUYER_ENDPOINTS[name], "api") for name in BUYER_ENDPOINTS] + [
    (name, AGENT_ENDPOINTS[name], "agent") for name in AGENT_ENDPOINTS
]


@pytest.mark.parametrize(("name", "call", "kind"), ALL_ENDPOINTS, ids=[e[0] for e in ALL_ENDPOINTS])
def test_a_disabled_account_is_refused_on_every_endpoint_and_changes_nothing(
    account: tuple[User, dict[str, str], Ids], name: str, call: Callable, kind: str
) -> None:
    user, headers, ids = account
    User.objects.filter(pk=user.pk).update(is_active=False)
    before = snapshot()

    response = call(APIClient(), headers, ids)

    assert_envelope(response, 403, "forbidden")
    assert snapshot() == before


@pytest.mark.parametrize(("name", "call", "kind"), ALL_ENDPOINTS, ids=[e[0] for e in ALL_ENDPOINTS])
def test_a_replaced_key_is_refused_on_every_endpoint_at_once_and_changes_nothing(
    account: tuple[User, dict[str, str], Ids], name: str, call: Callable, kind: str
) -> None:
    user, headers, ids = account
    issued = key_issue(user=user, kind=ApiKey.Kind.API if kind == "api" else ApiKey.Kind.AGENT)
    before = snapshot()

    refused = call(APIClient(), headers, ids)

    assert_envelope(refused, 401, "invalid_api_key" if kind == "api" else "invalid_agent_key")
    assert snapshot() == before
    header = "HTTP_X_API_KEY" if kind == "api" else "HTTP_X_AGENT_KEY"
    accepted = call(APIClient(), {**headers, header: issued.key}, ids)
    assert accepted.status_code < 400, accepted.content


def test_a_random_key_of_the_right_shape_is_refused_everywhere(
    account: tuple[User, dict[str, str], Ids],
) -> None:
    _, headers, ids = account
    rng = random.Random(7)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    forged = {
        "HTTP_X_API_KEY": "ztp_live_" + "".join(rng.choice(alphabet) for _ in range(43)),
        "HTTP_X_AGENT_KEY": "ztp_agent_" + "".join(rng.choice(alphabet) for _ in range(43)),
    }
    before = snapshot()

    for _, call, kind in ALL_ENDPOINTS:
        response = call(APIClient(), forged, ids)
        assert_envelope(response, 401, "invalid_api_key" if kind == "api" else "invalid_agent_key")

    assert snapshot() == before
    assert json.loads(APIClient().get("/api/v1/balance", **headers).content)["balance"] > 0
