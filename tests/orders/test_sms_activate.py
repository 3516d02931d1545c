"""The sms-activate protocol at /stubs/handler_api.php, byte for byte: every action's words
and shapes (docs/SMS-ACTIVATE.md), over the same orders, ledger and callbacks as the REST
API. The client libraries bots use drive it in test_sms_activate_clients.py."""

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing.services import wallet_balance
from orders.models import Application, Order, OrderStatus
from orders.services import sms_receive
from tests.factories import ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer

pytestmark = pytest.mark.django_db

HANDLER = "/stubs/handler_api.php"
PRICES = {"normal": 6500, "promo": 4500, "special": 9500}


@pytest.fixture
def client() -> Client:
    """Django's own client: bots post forms, not the API's JSON."""
    return Client()


@pytest.fixture
def wa(db: None) -> Application:
    return ApplicationFactory(name="WhatsApp", code="whatsapp", service_code="wa", prices=PRICES)


def ask(client: Client, buyer: Buyer | None, action: str | None, **params: Any) -> Any:
    query = {k: v for k, v in {"action": action, **params}.items() if v is not None}
    if buyer is not None:
        query["api_key"] = buyer.key
    return client.get(HANDLER, query)


def word(response: Any) -> str:
    """A text answer: HTTP 200, not JSON, exactly the word (no newline)."""
    assert response.status_code == 200, response.content
    assert "json" not in response["Content-Type"]
    body = response.content.decode()
    assert body == body.strip()
    return body


def shape(response: Any) -> Any:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def modem(mapping: str = "normal", provider: str = "Telkomsel", **fields: Any) -> Any:
    return ModemFactory(reseller=make_agent().user, mapping=mapping, provider=provider, **fields)


def sms(phone_number: str, text: str = "Kode WhatsApp Anda: 123-456") -> None:
    line = ModemFactory._meta.model.objects.get(phone_number=phone_number)
    sms_receive(reseller=line.reseller, uid=line.uid, sender="WhatsApp", text=text)


def number(client: Client, buyer: Buyer, **params: Any) -> tuple[int, str]:
    answer = word(ask(client, buyer, "getNumber", service="wa", **params))
    prefix, order_id, phone = answer.split(":")
    assert prefix == "ACCESS_NUMBER", answer
    return int(order_id), phone


# --- Keys and actions ------------------------------------------------------------------------


def test_a_missing_key_is_no_key_and_an_unknown_one_bad_key(client: Client, buyer: Buyer) -> None:
    assert word(client.get(HANDLER, {"action": "getBalance"})) == "NO_KEY"
    assert word(client.get(HANDLER, {"action": "getBalance", "api_key": ""})) == "NO_KEY"
    assert word(client.get(HANDLER, {"action": "getBalance", "api_key": "nope"})) == "BAD_KEY"
    guessed = "ztp_live_" + "x" * 43
    assert word(client.get(HANDLER, {"action": "getBalance", "api_key": guessed})) == "BAD_KEY"


def test_a_disabled_account_is_banned(client: Client, buyer: Buyer) -> None:
    buyer.user.is_active = False
    buyer.user.save()
    assert word(ask(client, buyer, "getBalance")) == "BANNED"


def test_the_key_is_checked_before_the_action(client: Client, buyer: Buyer) -> None:
    assert word(client.get(HANDLER, {"action": "nonsense", "api_key": "nope"})) == "BAD_KEY"
    assert word(ask(client, buyer, "nonsense")) == "BAD_ACTION"
    assert word(ask(client, buyer, None)) == "BAD_ACTION"


def test_balance_is_the_wallet_in_whole_rupiah(client: Client) -> None:
    assert word(ask(client, make_buyer(balance=17_154), "getBalance")) == "ACCESS_BALANCE:17154"
    assert word(ask(client, make_buyer(), "getBalanceAndCashBack")) == "ACCESS_BALANCE:0"


def test_post_with_a_form_body_or_only_a_query_string_and_unknown_parameters(
    client: Client, buyer: Buyer
) -> None:
    form = client.post(HANDLER, {"api_key": buyer.key, "action": "getBalance", "ref_id": "x"})
    assert word(form) == "ACCESS_BALANCE:100000"
    urlencoded = client.post(
        HANDLER,
        f"api_key={buyer.key}&action=getBalance",
        content_type="application/x-www-form-urlencoded",
    )
    assert word(urlencoded) == "ACCESS_BALANCE:100000"
    query = client.post(f"{HANDLER}?api_key={buyer.key}&action=getBalance&owner=site")
    assert word(query) == "ACCESS_BALANCE:100000"
    mixed = client.post(f"{HANDLER}?api_key={buyer.key}", {"action": "getBalance"})
    assert word(mixed) == "ACCESS_BALANCE:100000"


def test_any_accept_header_gets_the_protocol_answer(client: Client, buyer: Buyer) -> None:
    answer = client.get(
        HANDLER, {"api_key": buyer.key, "action": "getBalance"}, HTTP_ACCEPT="text/html"
    )
    assert word(answer) == "ACCESS_BALANCE:100000"


# --- getNumber ----------------------------------------------------------------------------------


def test_get_number_hands_out_the_cheapest_pool_with_stock_as_a_rest_order(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    normal, special = modem("normal"), modem("special")
    order_id, phone = number(client, buyer)  # no promo modem: normal is the cheapest in stock
    order = Order.objects.get(pk=order_id)
    assert (phone, order.operator, order.price) == (normal.phone_number, "normal", 6500)
    assert order.custom_user_id is None and order.buyer == buyer.user
    assert wallet_balance(buyer.user) == 100_000 - 6500
    rest = client.get(f"/api/v1/orders/{order_id}", HTTP_X_API_KEY=buyer.key).json()
    assert rest["status"] == "pending" and rest["phone_number"] == phone

    # normal is used up for WhatsApp: the next is special, the dearer one.
    order_id, phone = number(client, buyer)
    assert phone == special.phone_number
    assert Order.objects.get(pk=order_id).price == 9500


def test_max_price_keeps_to_the_pools_within_it(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    modem("special")
    assert word(ask(client, buyer, "getNumber", service="wa", maxPrice="9000")) == "NO_NUMBERS"
    cheap = word(ask(client, buyer, "getNumber", service="wa", maxPrice="4000"))
    assert cheap == "WRONG_MAX_PRICE:4500"  # below every price: the cheapest is named
    order_id, _ = number(client, buyer, maxPrice="9500.00")
    assert Order.objects.get(pk=order_id).price == 9500
    # A maxPrice that is no number is ignored, as the protocol's servers do.
    modem("special")
    assert number(client, buyer, maxPrice="cheap")[0] > order_id


def test_the_operator_parameter_is_the_carrier(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    telkomsel = modem(provider="TELKOMSEL")
    indosat = modem(provider="INDOSAT OOREDOO HUTCHISON")
    _, phone = number(client, buyer, operator="indosat")
    assert phone == indosat.phone_number
    assert word(ask(client, buyer, "getNumber", service="wa", operator="indosat")) == "NO_NUMBERS"
    _, phone = number(client, buyer, operator="xl,telkomsel")
    assert phone == telkomsel.phone_number
    modem(provider="3")
    assert number(client, buyer, operator="any")[1]


def test_get_number_refusals(client: Client, wa: Application) -> None:
    poor, rich = make_buyer(balance=100), make_buyer(balance=100_000)
    modem()
    assert word(ask(client, poor, "getNumber", service="wa")) == "NO_BALANCE"
    assert word(ask(client, rich, "getNumber", service="zz")) == "BAD_SERVICE"
    assert word(ask(client, rich, "getNumber")) == "BAD_SERVICE"
    assert word(ask(client, rich, "getNumber", service="wa", country="0")) == "NO_NUMBERS"
    wa.enabled = False
    wa.save()
    assert word(ask(client, rich, "getNumber", service="wa")) == "BAD_SERVICE"
    wa.enabled = True
    wa.save()
    number(client, rich, country="6")
    assert word(ask(client, rich, "getNumber", service="wa", country="any")) == "NO_NUMBERS"
    assert Order.objects.count() == 1


def test_the_slug_works_where_there_is_no_code(client: Client, buyer: Buyer) -> None:
    app = ApplicationFactory(code="traveloka", service_code=None, prices={"normal": 3000})
    modem()
    answer = word(ask(client, buyer, "getNumber", service="traveloka"))
    assert Order.objects.get(pk=answer.split(":")[1]).application == app


def test_too_many_pending_orders_is_no_numbers(
    client: Client, buyer: Buyer, wa: Application, settings: Any
) -> None:
    settings.MAX_ACTIVE_ORDERS = 1
    modem(), modem()
    number(client, buyer)
    assert word(ask(client, buyer, "getNumber", service="wa")) == "NO_NUMBERS"


def test_get_number_v2_is_the_order_as_json(client: Client, buyer: Buyer, wa: Application) -> None:
    line = modem("promo")
    data = shape(ask(client, buyer, "getNumberV2", service="wa"))
    order = Order.objects.get(pk=data["activationId"])
    assert data == {
        "activationId": order.pk,
        "phoneNumber": line.phone_number,
        "activationCost": 4500,
        "currency": 360,
        "countryCode": "6",
        "canGetAnotherSms": "1",
        "activationTime": order.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        "activationEnd": order.expires_at.strftime("%Y-%m-%d %H:%M:%S"),
        "activationEndTime": order.expires_at.strftime("%Y-%m-%d %H:%M:%S"),
        "activationOperator": "promo",
    }
    assert word(ask(client, buyer, "getNumberV2", service="wa")) == "NO_NUMBERS"


# --- getStatus and setStatus ------------------------------------------------------------------


def test_a_whole_activation(client: Client, buyer: Buyer, wa: Application) -> None:
    modem()
    order_id, phone = number(client, buyer)
    status = lambda: word(ask(client, buyer, "getStatus", id=order_id))  # noqa: E731
    assert status() == "STATUS_WAIT_CODE"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=1)) == "ACCESS_READY"
    assert word(ask(client, buyer, "getFullSms", id=order_id)) == "STATUS_WAIT_CODE"
    assert shape(ask(client, buyer, "getStatusV2", id=order_id)) == {
        "verificationType": 0,
        "sms": None,
        "call": None,
    }

    sms(phone, "Kode WhatsApp Anda: 123-456.\nJangan bagikan.")
    assert status() == "STATUS_OK:123456"
    assert word(ask(client, buyer, "getFullSms", id=order_id)) == (
        "FULL_SMS:Kode WhatsApp Anda: 123-456. Jangan bagikan."
    )
    v2 = shape(ask(client, buyer, "getStatusV2", id=order_id))
    assert v2["sms"]["code"] == "123456" and v2["sms"]["text"].startswith("Kode WhatsApp")
    assert word(ask(client, buyer, "setStatus", id=order_id, status=8)) == "BAD_STATUS"

    assert word(ask(client, buyer, "setStatus", id=order_id, status=3)) == "ACCESS_RETRY_GET"
    assert status() == "STATUS_WAIT_RETRY:123456"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=3)) == "ACCESS_RETRY_GET"
    assert status() == "STATUS_WAIT_RETRY:123456"
    sms(phone, "Kode WhatsApp Anda: 654-321")
    assert status() == "STATUS_OK:654321"

    assert word(ask(client, buyer, "setStatus", id=order_id, status=6)) == "ACCESS_ACTIVATION"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=6)) == "ACCESS_ACTIVATION"
    assert Order.objects.get(pk=order_id).status == OrderStatus.FINISHED
    assert status() == "STATUS_OK:654321"  # a finished order keeps its code (D3)
    assert word(ask(client, buyer, "setStatus", id=order_id, status=1)) == "BAD_STATUS"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=3)) == "BAD_STATUS"
    assert wallet_balance(buyer.user) == 100_000 - 6500


def test_cancel_refunds_once(client: Client, buyer: Buyer, wa: Application) -> None:
    modem()
    order_id, _ = number(client, buyer)
    assert word(ask(client, buyer, "setStatus", id=order_id, status=6)) == "BAD_STATUS"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=3)) == "ACCESS_RETRY_GET"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=8)) == "ACCESS_CANCEL"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=-1)) == "ACCESS_CANCEL"
    assert wallet_balance(buyer.user) == 100_000
    assert word(ask(client, buyer, "getStatus", id=order_id)) == "STATUS_CANCEL"
    assert word(ask(client, buyer, "getStatusV2", id=order_id)) == "STATUS_CANCEL"
    assert word(ask(client, buyer, "getFullSms", id=order_id)) == "STATUS_CANCEL"
    for status in (1, 3, 6):
        assert word(ask(client, buyer, "setStatus", id=order_id, status=status)) == (
            "STATUS_CANCEL"
        )


def test_an_expired_activation_is_cancelled(client: Client, buyer: Buyer, wa: Application) -> None:
    modem()
    order_id, _ = number(client, buyer)
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now())
    assert word(ask(client, buyer, "getStatus", id=order_id)) == "STATUS_CANCEL"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=8)) == "ACCESS_CANCEL"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=6)) == "STATUS_CANCEL"


@pytest.mark.parametrize(
    "order_id", ["", "abc", "0", "-3", "99999999999999", "9" * 5000, "1.5", "١٢"]
)
def test_a_malformed_or_unknown_id_is_no_activation(
    client: Client, buyer: Buyer, order_id: str
) -> None:
    for action in ("getStatus", "getStatusV2", "getFullSms"):
        assert word(ask(client, buyer, action, id=order_id)) == "NO_ACTIVATION"
    assert word(ask(client, buyer, "setStatus", id=order_id, status=8)) == "NO_ACTIVATION"


def test_another_buyers_activation_does_not_exist(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    modem()
    order_id, _ = number(client, buyer)
    other = make_buyer(balance=10_000)
    assert word(ask(client, other, "getStatus", id=order_id)) == "NO_ACTIVATION"
    assert word(ask(client, other, "setStatus", id=order_id, status=8)) == "NO_ACTIVATION"
    assert word(ask(client, other, "setStatus", id=order_id, status=1)) == "NO_ACTIVATION"
    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING


@pytest.mark.parametrize("status", ["", "2", "4", "abc", "８"])
def test_an_unknown_status_is_bad_status(
    client: Client, buyer: Buyer, wa: Application, status: str
) -> None:
    modem()
    order_id, _ = number(client, buyer)
    assert word(ask(client, buyer, "setStatus", id=order_id, status=status)) == "BAD_STATUS"
    assert Order.objects.get(pk=order_id).status == OrderStatus.PENDING


def test_the_callback_fires_for_an_order_made_here(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    from orders.models import CallbackDelivery

    buyer.user.callback_url = "https://example.com/hook"
    buyer.user.save()
    modem()
    order_id, phone = number(client, buyer)
    sms(phone)
    assert CallbackDelivery.objects.filter(order_id=order_id).exists()


# --- The catalogue -------------------------------------------------------------------------------


def test_prices_and_numbers_status_come_from_the_live_catalogue(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    tg = ApplicationFactory(code="telegram", service_code="tg", prices={"normal": 5000})
    ApplicationFactory(code="unpriced", service_code="un", prices={})
    modem("normal"), modem("special")
    prices = shape(ask(client, buyer, "getPrices"))
    assert prices == {"6": {"wa": {"cost": 6500, "count": 2}, "tg": {"cost": 5000, "count": 1}}}
    assert shape(ask(client, buyer, "getPrices", service="tg")) == {
        "6": {"tg": {"cost": 5000, "count": 1}}
    }
    assert shape(ask(client, buyer, "getPrices", service="zz")) == {}
    assert shape(ask(client, buyer, "getPrices", country="0")) == {}
    assert shape(ask(client, buyer, "getNumbersStatus")) == {"wa_0": 2, "tg_0": 1}
    modem("normal", provider="XL Axiata")
    assert shape(ask(client, buyer, "getNumbersStatus", operator="xl")) == {"wa_0": 1, "tg_0": 1}
    assert shape(ask(client, buyer, "getNumbersStatus", country="7")) == {}
    assert tg.pk


def test_countries_operators_services_and_active_activations(
    client: Client, buyer: Buyer, wa: Application
) -> None:
    modem(provider="TELKOMSEL"), modem(provider="3")
    assert shape(ask(client, buyer, "getCountries")) == {
        "6": {
            "id": 6,
            "rus": "Индонезия",
            "eng": "Indonesia",
            "chn": "印度尼西亚",
            "visible": 1,
            "retry": 1,
            "rent": 0,
            "multiService": 0,
        }
    }
    assert shape(ask(client, buyer, "getOperators")) == {
        "status": "success",
        "countryOperators": {"6": ["telkomsel", "three"]},
    }
    assert word(ask(client, buyer, "getOperators", country="0")) == "OPERATORS_NOT_FOUND"
    assert shape(ask(client, buyer, "getServicesList")) == {
        "status": "success",
        "services": [{"code": "wa", "name": "WhatsApp"}],
    }
    assert shape(ask(client, buyer, "getActiveActivations")) == {
        "status": "success",
        "activeActivations": [],
    }
    order_id, phone = number(client, buyer)
    sms(phone)
    [active] = shape(ask(client, buyer, "getActiveActivations"))["activeActivations"]
    assert active["activationId"] == str(order_id)
    assert (active["serviceCode"], active["phoneNumber"]) == ("wa", phone)
    assert (active["smsCode"], active["activationCost"]) == (["123456"], "6500")
    assert active["smsText"] == "Kode WhatsApp Anda: 123-456"


# --- Nothing breaks it ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"service": "wa", "maxPrice": "NaN"},
        {"service": "wa", "maxPrice": "-1"},
        {"service": "wa", "maxPrice": "1e999"},
        {"service": "wa", "maxPrice": "1e999999999"},
        {"service": "wa\x00", "country": "\x00"},
        {"service": "wa", "operator": ",,,"},
        {"service": "wa", "country": "٦"},
        {"service": "w" * 5000},
    ],
)
def test_garbage_gets_a_word_never_a_500(
    client: Client, buyer: Buyer, wa: Application, params: dict[str, str]
) -> None:
    modem()
    for action in ("getNumber", "getNumberV2", "getPrices", "getNumbersStatus", "getOperators"):
        response = ask(client, buyer, action, **params)
        assert response.status_code == 200, (action, params, response.content)


def test_the_rate_limit_is_the_transports_429(client: Client, buyer: Buyer, settings: Any) -> None:
    """The one answer that is not HTTP 200: the API's per-key limit, with Retry-After."""
    settings.API_RATE_LIMIT = "2/m"
    assert word(ask(client, buyer, "getBalance")) == "ACCESS_BALANCE:100000"
    assert word(ask(client, buyer, "getBalance")) == "ACCESS_BALANCE:100000"
    limited = ask(client, buyer, "getBalance")
    assert limited.status_code == 429 and limited.content == b"TOO_MANY_REQUESTS"
    assert int(limited["Retry-After"]) >= 1
    # Guessing keys is counted too, per client address.
    guesses = [
        client.get(HANDLER, {"action": "getBalance", "api_key": f"ztp_live_guess{n}"})
        for n in range(3)
    ]
    assert [word(g) for g in guesses[:2]] == ["BAD_KEY", "BAD_KEY"]
    assert guesses[2].status_code == 429


def test_other_methods_are_refused(client: Client, buyer: Buyer) -> None:
    answer = client.put(f"{HANDLER}?api_key={buyer.key}&action=getBalance")
    assert answer.status_code == 405 and answer.content == b"BAD_ACTION"
