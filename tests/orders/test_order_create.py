"""POST /api/v1/orders: the 201 answer, the held price, and every refusal in the
contract's order (401, 400, 404, 429, 402, 409), each leaving nothing behind."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import key_issue
from billing.models import LedgerAccount, LedgerTransaction
from billing.services import topup, wallet_balance
from orders.models import Application, Order, OrderStatus
from tests.factories import (
    Agent,
    ApplicationFactory,
    Buyer,
    ModemFactory,
    make_buyer,
    offline_since,
)

ORDERS = "/api/v1/orders"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ORDER_KEYS = {
    "order_id",
    "status",
    "phone_number",
    "application_id",
    "operator",
    "price",
    "custom_user_id",
    "otp_code",
    "sms_text",
    "messages",
    "created_at",
    "expires_at",
}


def post_order(client: APIClient, buyer: Buyer, body: Any, **extra: str) -> Any:
    return client.post(
        ORDERS, data=json.dumps(body), content_type="application/json", **buyer.headers, **extra
    )


def escrow() -> int:
    account = LedgerAccount.objects.filter(kind="escrow", user=None).first()
    return account.balance if account else 0


def parse_z(value: str) -> datetime:
    assert ISO_Z.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.fixture
def app(db: None) -> Application:
    return ApplicationFactory(prices={"normal": 3500})


@pytest.fixture
def modem(agent: Agent) -> Any:
    return ModemFactory(reseller=agent.user, phone_number="628111234567")


class NothingChanged:
    """Snapshot of what a refused order request must not touch."""

    def __init__(self, buyer: Buyer) -> None:
        self.buyer = buyer
        self.balance = wallet_balance(buyer.user)
        self.escrow = escrow()
        self.orders = Order.objects.count()
        self.transactions = LedgerTransaction.objects.count()

    def check(self) -> None:
        assert wallet_balance(self.buyer.user) == self.balance
        assert escrow() == self.escrow
        assert Order.objects.count() == self.orders
        assert LedgerTransaction.objects.count() == self.transactions


# --- The 201 answer ----------------------------------------------------------------------


@override_settings(ORDER_TTL_SECONDS=60)
def test_seed_body_creates_a_pending_order_with_every_field(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    ApplicationFactory(id=1, prices={"normal": 3500})
    ModemFactory(reseller=agent.user, phone_number="628111234567")
    before = timezone.now().replace(microsecond=0)

    response = post_order(client, buyer, {"application_id": 1, "operator": "normal"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ORDER_KEYS
    order = Order.objects.get()
    assert body["order_id"] == order.pk
    assert body["status"] == "pending"
    assert body["phone_number"] == "628111234567"
    assert body["application_id"] == 1
    assert body["operator"] == "normal"
    assert body["price"] == 3500
    assert body["custom_user_id"] is None
    assert body["otp_code"] is None
    assert body["sms_text"] is None
    assert body["messages"] == []
    created_at = parse_z(body["created_at"])
    expires_at = parse_z(body["expires_at"])
    assert created_at.tzinfo == UTC
    assert before <= created_at <= timezone.now()
    assert expires_at - created_at == timedelta(seconds=60)


def test_created_order_is_stored_as_answered(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    body = post_order(client, buyer, {"application_id": app.pk}).json()

    order = Order.objects.get(pk=body["order_id"])
    assert order.buyer == buyer.user
    assert order.modem == modem
    assert order.reseller == modem.reseller
    assert order.status == OrderStatus.PENDING
    assert order.phone_number == body["phone_number"]
    assert order.expires_at - order.created_at == timedelta(seconds=1200)


def test_operator_omitted_defaults_to_normal(client: APIClient, buyer: Buyer, agent: Agent) -> None:
    app = ApplicationFactory(prices={"normal": 3500, "promo": 2800})
    ModemFactory(reseller=agent.user, mapping="promo")
    normal = ModemFactory(reseller=agent.user, mapping="normal")

    response = post_order(client, buyer, {"application_id": app.pk})

    assert response.status_code == 201, response.content
    assert response.json()["operator"] == "normal"
    assert response.json()["price"] == 3500
    assert response.json()["phone_number"] == normal.phone_number


def test_promo_operator_uses_its_own_price_and_pool(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    app = ApplicationFactory(prices={"normal": 3500, "promo": 2800})
    ModemFactory(reseller=agent.user, mapping="normal")
    promo = ModemFactory(reseller=agent.user, mapping="promo")

    response = post_order(client, buyer, {"application_id": app.pk, "operator": "promo"})

    assert response.status_code == 201, response.content
    assert response.json()["operator"] == "promo"
    assert response.json()["price"] == 2800
    assert response.json()["phone_number"] == promo.phone_number
    assert wallet_balance(buyer.user) == 100_000 - 2800


def test_custom_user_id_is_echoed_on_create_and_read(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    response = post_order(client, buyer, {"application_id": app.pk, "custom_user_id": "user-42"})

    assert response.status_code == 201, response.content
    assert response.json()["custom_user_id"] == "user-42"
    read = client.get(f"{ORDERS}/{response.json()['order_id']}", **buyer.headers)
    assert read.json()["custom_user_id"] == "user-42"


@pytest.mark.parametrize("custom_user_id", ["x" * 64, "é" * 64, "用户" * 32])
def test_custom_user_id_of_64_characters_is_accepted(
    client: APIClient, buyer: Buyer, app: Application, modem: Any, custom_user_id: str
) -> None:
    response = post_order(
        client, buyer, {"application_id": app.pk, "custom_user_id": custom_user_id}
    )

    assert response.status_code == 201, response.content
    assert response.json()["custom_user_id"] == custom_user_id
    assert Order.objects.get().custom_user_id == custom_user_id


def test_custom_user_id_of_65_characters_is_refused(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": app.pk, "custom_user_id": "x" * 65})

    error = assert_error(response, 400, "invalid_request")
    assert "custom_user_id" in error["fields"]
    unchanged.check()


def test_the_price_is_held_in_escrow(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    escrow_before = escrow()

    response = post_order(client, buyer, {"application_id": app.pk, "operator": "normal"})

    assert response.status_code == 201, response.content
    assert wallet_balance(buyer.user) == 100_000 - 3500
    assert escrow() == escrow_before + 3500
    hold = LedgerTransaction.objects.get(reference=f"order:{response.json()['order_id']}:hold")
    assert hold.kind == "hold"
    # Nobody has earned it yet: the reseller's wallet is untouched.
    assert wallet_balance(modem.reseller) == 0


def test_a_modem_serves_one_open_order_per_application_but_several_applications(
    client: APIClient, buyer: Buyer, modem: Any
) -> None:
    first_app = ApplicationFactory()
    second_app = ApplicationFactory()

    first = post_order(client, buyer, {"application_id": first_app.pk})
    again = post_order(client, buyer, {"application_id": first_app.pk})
    other = post_order(client, buyer, {"application_id": second_app.pk})

    assert first.status_code == 201, first.content
    assert_error(again, 409, "out_of_stock")
    assert other.status_code == 201, other.content
    assert other.json()["phone_number"] == first.json()["phone_number"] == modem.phone_number


def test_a_buyer_who_is_a_reseller_may_get_a_number_from_their_own_modem(
    client: APIClient, agent: Agent, app: Application
) -> None:
    own = ModemFactory(reseller=agent.user)
    topup(user=agent.user, amount=10_000)
    api_key = key_issue(user=agent.user, kind=ApiKey.Kind.API).key
    reseller_as_buyer = Buyer(user=agent.user, key=api_key)

    response = post_order(client, reseller_as_buyer, {"application_id": app.pk})

    assert response.status_code == 201, response.content
    assert response.json()["phone_number"] == own.phone_number
    assert wallet_balance(agent.user) == 10_000 - 3500


# --- 401 ----------------------------------------------------------------------------------


def test_no_api_key_is_refused_with_401(client: APIClient, app: Application, modem: Any) -> None:
    response = client.post(ORDERS, {"application_id": app.pk}, format="json")

    assert_error(response, 401, "invalid_api_key")
    assert not Order.objects.exists()


def test_unknown_api_key_is_refused_with_401(
    client: APIClient, app: Application, modem: Any
) -> None:
    response = client.post(
        ORDERS, {"application_id": app.pk}, format="json", HTTP_X_API_KEY="zk_live_nonsense"
    )

    assert_error(response, 401, "invalid_api_key")
    assert not Order.objects.exists()


def test_agent_key_is_not_an_api_key(client: APIClient, agent: Agent, app: Application) -> None:
    response = client.post(
        ORDERS, {"application_id": app.pk}, format="json", HTTP_X_API_KEY=agent.key
    )

    assert_error(response, 401, "invalid_api_key")


def test_401_comes_before_400(client: APIClient, db: None) -> None:
    response = client.post(ORDERS, data="{not json", content_type="application/json")

    assert_error(response, 401, "invalid_api_key")


# --- 400 ----------------------------------------------------------------------------------


def test_bad_json_is_400(client: APIClient, buyer: Buyer, app: Application, modem: Any) -> None:
    unchanged = NothingChanged(buyer)

    response = client.post(
        ORDERS, data='{"application_id": 1,', content_type="application/json", **buyer.headers
    )

    assert_error(response, 400, "invalid_request")
    unchanged.check()


APP = object()  # replaced by the application's id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "application_id"),
        ({"operator": "normal"}, "application_id"),
        ({"application_id": True}, "application_id"),
        ({"application_id": 1.5}, "application_id"),
        ({"application_id": 1.0}, "application_id"),
        ({"application_id": None}, "application_id"),
        ({"application_id": [1]}, "application_id"),
        ({"application_id": {"id": 1}}, "application_id"),
        ({"application_id": 0}, "application_id"),
        ({"application_id": -1}, "application_id"),
        ({"application_id": APP, "operator": "gold"}, "operator"),
        ({"application_id": APP, "operator": "NORMAL"}, "operator"),
        ({"application_id": APP, "operator": None}, "operator"),
        ({"application_id": APP, "operator": 1}, "operator"),
        ({"application_id": APP, "custom_user_id": 42}, "custom_user_id"),
        ({"application_id": APP, "custom_user_id": ["a"]}, "custom_user_id"),
    ],
    ids=[
        "missing",
        "missing-with-operator",
        "true",
        "float",
        "float-integral",
        "null",
        "list",
        "object",
        "zero",
        "negative",
        "operator-gold",
        "operator-uppercase",
        "operator-null",
        "operator-number",
        "custom-user-id-number",
        "custom-user-id-list",
    ],
)
def test_malformed_fields_are_400_naming_the_field(
    client: APIClient,
    buyer: Buyer,
    app: Application,
    modem: Any,
    body: dict[str, Any],
    field: str,
) -> None:
    body = {name: app.pk if value is APP else value for name, value in body.items()}
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, body)

    error = assert_error(response, 400, "invalid_request")
    assert field in error["fields"], error
    assert error["fields"][field] and all(isinstance(m, str) for m in error["fields"][field])
    unchanged.check()


def test_string_application_id_that_looks_like_a_number_is_refused(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": str(app.pk), "operator": "normal"})

    error = assert_error(response, 400, "invalid_request")
    assert "application_id" in error["fields"]
    unchanged.check()


def test_operator_with_no_price_for_the_application_is_400(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    app = ApplicationFactory(prices={"normal": 3500})
    ModemFactory(reseller=agent.user, mapping="special")
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": app.pk, "operator": "special"})

    error = assert_error(response, 400, "invalid_request")
    assert "operator" in error["fields"]
    unchanged.check()


def test_400_comes_before_404(client: APIClient, buyer: Buyer, db: None) -> None:
    response = post_order(client, buyer, {"application_id": 999_999, "operator": "gold"})

    assert_error(response, 400, "invalid_request")


# --- 404 ----------------------------------------------------------------------------------


def test_unknown_application_is_404(client: APIClient, buyer: Buyer, modem: Any) -> None:
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": 999_999, "operator": "normal"})

    assert_error(response, 404, "not_found")
    unchanged.check()


def test_huge_application_id_is_404_or_400_never_500(
    client: APIClient, buyer: Buyer, db: None
) -> None:
    response = client.post(
        ORDERS,
        data='{"application_id": 99999999999999999999}',
        content_type="application/json",
        **buyer.headers,
    )

    assert response.status_code in (400, 404), response.content
    assert response.json()["error"]["code"] in ("invalid_request", "not_found")


def test_disabled_application_is_404(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    Application.objects.filter(pk=app.pk).update(enabled=False)
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": app.pk, "operator": "normal"})

    assert_error(response, 404, "not_found")
    unchanged.check()


# --- 429 ----------------------------------------------------------------------------------


def _apps_with_stock(agent: Agent, count: int) -> list[Application]:
    ModemFactory(reseller=agent.user)
    return [ApplicationFactory() for _ in range(count)]


@override_settings(MAX_ACTIVE_ORDERS=2)
def test_too_many_pending_orders_is_429(client: APIClient, buyer: Buyer, agent: Agent) -> None:
    apps = _apps_with_stock(agent, 3)
    for app in apps[:2]:
        assert post_order(client, buyer, {"application_id": app.pk}).status_code == 201
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": apps[2].pk})

    assert_error(response, 429, "too_many_active_orders")
    unchanged.check()


@override_settings(MAX_ACTIVE_ORDERS=2)
def test_pending_orders_expired_by_the_clock_do_not_count(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    apps = _apps_with_stock(agent, 3)
    ids = [post_order(client, buyer, {"application_id": a.pk}).json()["order_id"] for a in apps[:2]]
    Order.objects.filter(pk=ids[0]).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post_order(client, buyer, {"application_id": apps[2].pk})

    assert response.status_code == 201, response.content


@override_settings(MAX_ACTIVE_ORDERS=2)
def test_cancelled_and_completed_orders_do_not_count(
    client: APIClient, buyer: Buyer, agent: Agent
) -> None:
    apps = _apps_with_stock(agent, 3)
    ids = [post_order(client, buyer, {"application_id": a.pk}).json()["order_id"] for a in apps[:2]]
    assert client.post(f"{ORDERS}/{ids[0]}/cancel", **buyer.headers).status_code == 200

    response = post_order(client, buyer, {"application_id": apps[2].pk})

    assert response.status_code == 201, response.content


@override_settings(MAX_ACTIVE_ORDERS=2)
def test_another_buyers_orders_do_not_count(client: APIClient, buyer: Buyer, agent: Agent) -> None:
    apps = _apps_with_stock(agent, 3)
    ModemFactory(reseller=agent.user)
    other = make_buyer(balance=100_000)
    for app in apps[:2]:
        assert post_order(client, other, {"application_id": app.pk}).status_code == 201

    response = post_order(client, buyer, {"application_id": apps[2].pk})

    assert response.status_code == 201, response.content


@override_settings(MAX_ACTIVE_ORDERS=2)
def test_404_comes_before_429(client: APIClient, buyer: Buyer, agent: Agent) -> None:
    apps = _apps_with_stock(agent, 2)
    for app in apps:
        assert post_order(client, buyer, {"application_id": app.pk}).status_code == 201

    response = post_order(client, buyer, {"application_id": 999_999})

    assert_error(response, 404, "not_found")


@override_settings(MAX_ACTIVE_ORDERS=1)
def test_429_comes_before_402(client: APIClient, agent: Agent) -> None:
    apps = _apps_with_stock(agent, 2)
    poor = make_buyer(balance=3500)
    assert post_order(client, poor, {"application_id": apps[0].pk}).status_code == 201
    assert wallet_balance(poor.user) == 0

    response = post_order(client, poor, {"application_id": apps[1].pk})

    assert_error(response, 429, "too_many_active_orders")


# --- 402 ----------------------------------------------------------------------------------


def test_balance_below_the_price_is_402(client: APIClient, app: Application, modem: Any) -> None:
    poor = make_buyer(balance=3499)
    unchanged = NothingChanged(poor)

    response = post_order(client, poor, {"application_id": app.pk, "operator": "normal"})

    error = assert_error(response, 402, "insufficient_balance")
    assert error["message"] == "Balance 3499 is below the price 3500."  # the contract's words
    unchanged.check()


def test_balance_equal_to_the_price_is_enough(
    client: APIClient, app: Application, modem: Any
) -> None:
    exact = make_buyer(balance=3500)

    response = post_order(client, exact, {"application_id": app.pk})

    assert response.status_code == 201, response.content
    assert wallet_balance(exact.user) == 0


def test_insufficient_balance_comes_before_out_of_stock(client: APIClient, db: None) -> None:
    app = ApplicationFactory(prices={"normal": 3500})
    broke = make_buyer(balance=0)
    unchanged = NothingChanged(broke)

    response = post_order(client, broke, {"application_id": app.pk, "operator": "normal"})

    assert_error(response, 402, "insufficient_balance")
    unchanged.check()


# --- 409 out_of_stock ---------------------------------------------------------------------


def test_no_modem_at_all_is_out_of_stock(client: APIClient, buyer: Buyer, app: Application) -> None:
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": app.pk, "operator": "normal"})

    assert_error(response, 409, "out_of_stock")
    unchanged.check()


@pytest.mark.parametrize(
    "modem_fields",
    [
        {"last_heartbeat_at": None},
        {"can_order": False},
        {"mapping": "promo"},
        {"disabled": True},
        {"phone_number": None},
    ],
    ids=["never-seen", "cannot-order", "other-mapping", "disabled-by-staff", "no-number"],
)
def test_no_orderable_modem_is_out_of_stock(
    client: APIClient, buyer: Buyer, agent: Agent, app: Application, modem_fields: dict
) -> None:
    ModemFactory(reseller=agent.user, **modem_fields)
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": app.pk})

    assert_error(response, 409, "out_of_stock")
    unchanged.check()


@override_settings(MODEM_ONLINE_SECONDS=120)
def test_offline_modem_is_out_of_stock(
    client: APIClient, buyer: Buyer, agent: Agent, app: Application
) -> None:
    ModemFactory(reseller=agent.user, last_heartbeat_at=offline_since(121))

    response = post_order(client, buyer, {"application_id": app.pk})

    assert_error(response, 409, "out_of_stock")
    assert not Order.objects.exists()


def test_a_failed_request_leaves_no_order_and_no_money_moved(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    assert post_order(client, buyer, {"application_id": app.pk}).status_code == 201
    unchanged = NothingChanged(buyer)

    response = post_order(client, buyer, {"application_id": app.pk})

    assert_error(response, 409, "out_of_stock")
    unchanged.check()
    assert Order.objects.filter(buyer=buyer.user).count() == 1


def test_created_at_is_now_in_utc(
    client: APIClient, buyer: Buyer, app: Application, modem: Any
) -> None:
    body = post_order(client, buyer, {"application_id": app.pk}).json()

    created_at = parse_z(body["created_at"])
    assert abs(timezone.now() - created_at) < timedelta(seconds=5)


@pytest.mark.parametrize(
    "body",
    [
        {"application_id": 7},
        {"application_id": 7, "operator": "promo"},
        {"application_id": 7, "operator": "special"},
        {"application_id": 1},
        {"application_id": 0},
        {"application_id": -3},
        {"application_id": True},
        {"application_id": 7.0},
        {"application_id": "7"},
        {"application_id": 10**30},
        {"application_id": 7, "operator": "gold"},
        {"application_id": 7, "operator": None},
        {"application_id": 7, "operator": 1},
        {"application_id": 7, "custom_user_id": "u-1"},
        {"application_id": 7, "extra": 1},
        {"operator": "normal"},
        {},
        [],
    ],
)
def test_the_plain_order_body_fast_path_agrees_with_the_serializer(body: object) -> None:
    """orders.api checks the usual body without DRF; it must answer as the serializer does."""
    from orders.api import OrderCreateSerializer, _order_request
    from zerotp.api import validated

    def outcome(check: object) -> object:
        try:
            return dict(check(body))
        except Exception as exc:  # the error itself, compared by type and text
            return type(exc), str(exc)

    assert outcome(_order_request) == outcome(lambda b: validated(OrderCreateSerializer, b))
