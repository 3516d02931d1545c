"""Hostile input, beyond tests/test_api_errors.py (malformed order and sync bodies, bodies
over a lowered limit, lenient Content-Type) and the per-endpoint tests in tests/modems/.

Every case here asserts the answer (a JSON error with the contract's code, or an accepted
item echoed byte for byte) and that nothing else changed: a snapshot of every table a
request could write is taken before and compared after."""

import json
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from rest_framework.test import APIClient

from modems.models import InboundSms, Modem
from orders.models import ApplicationPrice, Order
from tests.factories import ApplicationFactory
from tests.reliability.conftest import Market, snapshot
from tests.test_api_errors import MALFORMED_BODIES, assert_envelope

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"
SYNC = "/api/modem/sync"
HEARTBEAT = "/api/modem/heartbeat"
SMS = "/api/modem/inbound-sms"
ACCOUNT = "/api/v1/account"
MB = 1024 * 1024


def send(
    market: Market,
    method: str,
    path: str,
    body: bytes | str,
    content_type: str = "application/json",
    **headers: str,
) -> Any:
    return APIClient().generic(
        method, path, body, content_type=content_type, **market.headers(path), **headers
    )


# --- malformed bodies on the endpoints test_api_errors.py does not cover --------------------

BODIES = {k: v for k, v in MALFORMED_BODIES.items() if k != "nul-in-custom-user-id"} | {
    "utf-16": '{"modems": [], "uid": "COM1"}'.encode("utf-16"),
    "latin-1": b'{"uid": "COM1", "from": "caf\xe9", "text": "code 123456"}',
    "xml": b"<modems><modem uid='COM1'/></modems>",
    "form": b"uid=COM1&from=WhatsApp&text=code+123456",
}
WRITES = [("POST", SYNC), ("POST", HEARTBEAT), ("POST", SMS), ("PATCH", ACCOUNT)]


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[p for _, p in WRITES])
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_malformed_bodies_are_400_and_write_nothing(
    market: Market, method: str, path: str, body: bytes
) -> None:
    before = snapshot()

    response = send(market, method, path, body)

    assert_envelope(response, 400, "invalid_request")
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[p for _, p in WRITES])
def test_a_multipart_form_is_not_json_and_writes_nothing(
    market: Market, method: str, path: str
) -> None:
    body = (
        b"--zz\r\nContent-Disposition: form-data; "
        b'name="modems"\r\n\r\n[{"uid": "COM1"}]\r\n--zz--\r\n'
    )
    before = snapshot()

    response = send(market, method, path, body, "multipart/form-data; boundary=zz")

    assert_envelope(response, 400, "invalid_request")
    assert snapshot() == before


# --- NUL bytes and lone surrogates in every string field ------------------------------------
# JSON carries both as escapes ("\u0000", "\ud800"): valid JSON, but no database column can
# store them (PostgreSQL refuses NUL; neither database can encode a lone surrogate).

POISON = {"nul": "\x00", "surrogate": "\ud800"}


def poisoned(value: str, poison: str) -> str:
    return value[:2] + poison + value[2:]


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
@pytest.mark.parametrize("field", ["operator", "custom_user_id"])
def test_poisoned_order_fields_are_400_and_write_nothing(
    market: Market, field: str, poison: str
) -> None:
    body = {"application_id": market.app.pk, "operator": "normal", "custom_user_id": "user-7"}
    body[field] = poisoned(body[field], poison)
    before = snapshot()

    response = send(market, "POST", ORDERS, json.dumps(body))

    error = assert_envelope(response, 400, "invalid_request")
    assert field in error["fields"]
    assert snapshot() == before


def test_a_nul_in_the_idempotency_key_is_400_and_writes_nothing(market: Market) -> None:
    # gunicorn refuses a NUL in a header itself; a front server that passes it on must
    # not turn it into a 500 (PostgreSQL cannot store it) or a stored key.
    body = json.dumps({"application_id": market.app.pk})
    before = snapshot()

    response = send(market, "POST", ORDERS, body, HTTP_IDEMPOTENCY_KEY="retry\x00-1")

    assert_envelope(response, 400, "invalid_request")
    assert snapshot() == before


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
@pytest.mark.parametrize("field", ["uid", "phone_number", "provider", "mapping"])
def test_a_poisoned_sync_item_is_rejected_alone(market: Market, field: str, poison: str) -> None:
    good = {"uid": "COM9", "phone_number": "628119990001", "provider": "XL", "mapping": "promo"}
    bad = {"uid": "COM8", "phone_number": "628119990002", "provider": "XL", "mapping": "normal"}
    bad[field] = poisoned(bad[field], poison)
    before = snapshot()

    response = send(market, "POST", SYNC, json.dumps({"modems": [bad, good]}))

    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["synced"], answer["created"]) == (1, 1)
    [error] = answer["errors"]
    assert (error["index"], error["code"]) == (0, "invalid_request")
    created = Modem.objects.exclude(pk__in=[row[0] for row in before["modems"]])
    assert list(created.values_list("uid", flat=True)) == ["COM9"]
    assert Modem.objects.filter(pk__in=[row[0] for row in before["modems"]]).count() == 2


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_a_poisoned_heartbeat_uid_is_400_and_updates_nothing(market: Market, poison: str) -> None:
    body = {"modems": [{"uid": "COM1", "signal": 10}, {"uid": poisoned("COM2", poison)}]}
    before = snapshot()

    response = send(market, "POST", HEARTBEAT, json.dumps(body))

    assert_envelope(response, 400, "invalid_request")
    assert snapshot() == before


SMS_FIELDS = ["uid", "phone_number", "from", "text", "message_id", "received_at"]


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
@pytest.mark.parametrize("field", SMS_FIELDS)
def test_a_poisoned_sms_field_is_400_and_stores_nothing(
    market: Market, field: str, poison: str
) -> None:
    body = {
        "uid": "COM1",
        "phone_number": market.modem.phone_number,
        "from": "WhatsApp",
        "text": "Your code is 123-456",
        "message_id": "agent-1",
        "received_at": "2026-01-01T00:00:00Z",
    }
    body[field] = poisoned(body[field], poison)
    before = snapshot()

    response = send(market, "POST", SMS, json.dumps(body))

    error = assert_envelope(response, 400, "invalid_request")
    assert field in error.get("fields", {}), error
    assert snapshot() == before


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_a_poisoned_callback_url_is_400_and_changes_nothing(market: Market, poison: str) -> None:
    before = snapshot()

    response = send(
        market, "PATCH", ACCOUNT, json.dumps({"callback_url": f"https://ho{poison}oks.example/"})
    )

    error = assert_envelope(response, 400, "invalid_request")
    assert "callback_url" in error["fields"]
    assert snapshot() == before


# --- 10 MB bodies and 100k-item batches -------------------------------------------------------


TEN_MB_BODIES = {
    ORDERS: lambda m: {"application_id": m.app.pk, "custom_user_id": "x" * (10 * MB)},
    SYNC: lambda m: {"modems": [{"uid": "COM1", "provider": "x" * (10 * MB)}]},
    HEARTBEAT: lambda m: {"modems": [{"uid": "COM1", "pad": "x" * (10 * MB)}]},
    SMS: lambda m: {"uid": "COM1", "from": "WhatsApp", "text": "Your code is 1" + "2" * (10 * MB)},
    ACCOUNT: lambda m: {"callback_url": "https://hooks.example/" + "x" * (10 * MB)},
}


@pytest.mark.parametrize("path", TEN_MB_BODIES, ids=TEN_MB_BODIES.keys())
def test_a_ten_megabyte_body_is_413_and_writes_nothing(market: Market, path: str) -> None:
    body = json.dumps(TEN_MB_BODIES[path](market))
    assert len(body) > 10 * MB
    before = snapshot()

    response = send(market, "PATCH" if path == ACCOUNT else "POST", path, body)

    assert_envelope(response, 413, "payload_too_large")
    assert snapshot() == before


@pytest.mark.parametrize("path", [SYNC, HEARTBEAT])
@pytest.mark.parametrize("body_limit", [None, 50 * MB], ids=["default-body-limit", "body-50MB"])
def test_a_batch_of_100k_modems_is_413_and_writes_nothing(
    market: Market, path: str, body_limit: int | None, settings: Any
) -> None:
    # With the default body limit the size decides; with a generous one, the batch limit.
    if body_limit:
        settings.API_MAX_BODY_BYTES = body_limit
    items = [{"uid": f"X{i}", "phone_number": f"6281{i:09d}", "signal": 50} for i in range(100_000)]
    before = snapshot()

    response = send(market, "POST", path, json.dumps({"modems": items}))

    assert_envelope(response, 413, "payload_too_large")
    assert snapshot() == before


# --- huge, negative and zero numbers ----------------------------------------------------------


APPLICATION_IDS = {
    "zero": "0",
    "minus-one": "-1",
    "minus-1e30": "-1" + "0" * 30,
    "2**63": str(2**63),
    "1e30": "1" + "0" * 30,
    "5000-digits": "1" + "0" * 5000,
    "1e400": "1e400",
    "minus-zero-float": "-0.0",
    "fraction": "1.5",
    "true": "true",
}


@pytest.mark.parametrize("raw", APPLICATION_IDS.values(), ids=APPLICATION_IDS.keys())
def test_out_of_range_application_ids_are_400_and_write_nothing(market: Market, raw: str) -> None:
    before = snapshot()

    response = send(market, "POST", ORDERS, f'{{"application_id": {raw}}}')

    assert_envelope(response, 400, "invalid_request")
    assert snapshot() == before


def test_the_largest_bigint_application_id_is_simply_not_found(market: Market) -> None:
    before = snapshot()

    response = send(market, "POST", ORDERS, '{"application_id": 9223372036854775807}')

    assert_envelope(response, 404, "not_found")
    assert snapshot() == before


@pytest.mark.parametrize("signal", [10**20, -1, 101, -(10**20), 1.5, "80", True])
def test_an_impossible_signal_rejects_the_sync_item_and_the_heartbeat(
    market: Market, signal: Any
) -> None:
    before = snapshot()

    synced = send(market, "POST", SYNC, json.dumps({"modems": [{"uid": "COM1", "signal": signal}]}))
    beat = send(
        market, "POST", HEARTBEAT, json.dumps({"modems": [{"uid": "COM1", "signal": signal}]})
    )

    assert synced.status_code == 200
    assert [e["code"] for e in synced.json()["errors"]] == ["invalid_request"]
    assert synced.json()["synced"] == 0
    assert_envelope(beat, 400, "invalid_request")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("order_id=" + "9" * 30, 400),
        ("order_id=-1", 400),
        ("order_id=0", 200),
        ("limit=" + "9" * 30, 400),
        ("limit=-5", 400),
    ],
)
def test_huge_and_negative_callback_log_filters_never_fail(
    market: Market, query: str, status: int
) -> None:
    response = APIClient().get(f"/api/v1/callbacks?{query}", **market.buyer.headers)

    assert response.status_code == status, response.content
    if status == 400:
        assert_envelope(response, 400, "invalid_request")


@pytest.mark.parametrize("delivery_id", ["9" * 30, "0"])
def test_resending_an_impossible_delivery_is_not_found(market: Market, delivery_id: str) -> None:
    response = APIClient().post(f"/api/v1/callbacks/{delivery_id}/resend", **market.buyer.headers)

    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("price", [0, -1, -3500])
def test_the_database_refuses_a_zero_or_negative_price(price: int) -> None:
    app = ApplicationFactory(prices={})

    with pytest.raises(IntegrityError), transaction.atomic():
        ApplicationPrice.objects.create(application=app, operator="normal", price=price)

    assert not ApplicationPrice.objects.filter(application=app).exists()


# --- emoji and right-to-left text: accepted and echoed byte for byte --------------------------

WORLD_TEXT = {
    "emoji-zwj": "👩🏽‍💻 dev 🇮🇩",
    "arabic": "مستخدم-٤٢ user",
    "hebrew-rlm": "משתמש\u200f42",
    "rtl-override": "\u202eredro\u202c-7",
    "combining": "Jose\u0301 n\u0303",
    "four-byte-x64": "𝕏" * 64,
}


@pytest.mark.parametrize("text", WORLD_TEXT.values(), ids=WORLD_TEXT.keys())
def test_custom_user_id_in_any_script_is_echoed_byte_for_byte(market: Market, text: str) -> None:
    client = APIClient()

    created = send(
        market,
        "POST",
        ORDERS,
        json.dumps({"application_id": market.app.pk, "custom_user_id": text}, ensure_ascii=False),
    )

    assert created.status_code == 201, created.content
    assert text.encode() in created.content  # raw UTF-8, not \\u escapes
    order_id = created.json()["order_id"]
    read = client.get(f"{ORDERS}/{order_id}", **market.buyer.headers)
    listed = client.get(ORDERS, **market.buyer.headers)
    assert read.json()["custom_user_id"] == text
    assert text.encode() in read.content
    assert [o["custom_user_id"] for o in listed.json()["results"] if o["order_id"] == order_id] == [
        text
    ]
    assert Order.objects.get(pk=order_id).custom_user_id == text


def test_sixty_five_four_byte_characters_are_one_too_many(market: Market) -> None:
    before = snapshot()
    body = json.dumps({"application_id": market.app.pk, "custom_user_id": "𝕏" * 65})

    response = send(market, "POST", ORDERS, body)

    error = assert_envelope(response, 400, "invalid_request")
    assert "custom_user_id" in error["fields"]
    assert snapshot() == before


@pytest.mark.parametrize("text", WORLD_TEXT.values(), ids=WORLD_TEXT.keys())
def test_a_provider_in_any_script_is_stored_byte_for_byte(market: Market, text: str) -> None:
    body = json.dumps({"modems": [{"uid": "COM1", "provider": text}]}, ensure_ascii=False)

    response = send(market, "POST", SYNC, body)

    assert response.json() == {"synced": 1, "created": 0, "updated": 1, "errors": []}
    assert Modem.objects.get(pk=market.modem.pk).provider == text


SMS_TEXTS = {
    "arabic": ("واتساب", "رمز التحقق الخاص بك هو 482913 لا تشاركه 🔐"),
    "hebrew": ("WhatsApp", "WhatsApp code 482913\u200f — קוד האימות שלך"),
    "emoji": ("WA 💬", "Kode Anda 482913 🙏🏽 — jangan berikan 👨‍👩‍👧"),
    "rtl-override": ("\u202eppAstahW", "code \u202e482913\u202c ok"),
}


@pytest.mark.parametrize(("sender", "text"), SMS_TEXTS.values(), ids=SMS_TEXTS.keys())
def test_sms_in_any_script_is_matched_and_echoed_byte_for_byte(
    market: Market, sender: str, text: str
) -> None:
    body = json.dumps(
        {"uid": "COM1", "from": sender, "text": text, "phone_number": market.modem.phone_number},
        ensure_ascii=False,
    )

    response = send(market, "POST", SMS, body)

    assert response.json() == {"matched": True, "order_id": market.order_id, "otp": "482913"}
    read = APIClient().get(f"{ORDERS}/{market.order_id}", **market.buyer.headers)
    order = read.json()
    assert order["sms_text"] == text
    assert [(m["from"], m["text"]) for m in order["messages"]] == [(sender, text)]
    assert text.encode() in read.content and sender.encode() in read.content
    stored = InboundSms.objects.get()
    assert (stored.sender, stored.text) == (sender, text)


# --- bugs found by the fuzzer, pinned with the exact input ------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/orders/abc/cancel"),
        ("POST", "/api/v1/orders/null/finish"),
        ("POST", "/api/v1/callbacks/0.5/resend"),
        ("POST", "/api/nope"),
        ("PUT", "/api/v1/orders/x"),
        ("DELETE", "/api/modem/nope"),
    ],
)
def test_unknown_api_paths_are_a_json_404_for_a_real_client_too(
    market: Market, method: str, path: str
) -> None:
    # Django's test client skips CSRF checks unless told otherwise; curl and the agents
    # never send a CSRF token, so an unknown path must not become the HTML CSRF page.
    client = Client(enforce_csrf_checks=True)

    response = client.generic(
        method, path, b"{}", content_type="application/json", **market.buyer.headers
    )

    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("path", [ORDERS, "/api/v1/callbacks"])
@pytest.mark.parametrize("cursor", ["garbage", "%C2%B5", "bz0tMQ%3D%3D"])
def test_a_malformed_cursor_is_400_invalid_request(market: Market, path: str, cursor: str) -> None:
    response = APIClient().get(f"{path}?cursor={cursor}", **market.buyer.headers)

    error = assert_envelope(response, 400, "invalid_request")
    assert "cursor" in error["message"].lower() or "cursor" in error.get("fields", {})


@pytest.mark.parametrize(
    "received_at",
    ["0001-01-01T00:00:00+14:00", "0001-01-01T05:00:00+03:00", "0001-01-01T00:00:00Z"],
)
def test_a_received_at_at_the_edge_of_time_is_refused_or_stored_readably(
    market: Market, received_at: str
) -> None:
    body = {"uid": "COM1", "from": "WhatsApp", "text": "Your code is 123456"}

    response = send(market, "POST", SMS, json.dumps({**body, "received_at": received_at}))

    if response.status_code == 400:
        assert "received_at" in assert_envelope(response, 400, "invalid_request")["fields"]
        assert not InboundSms.objects.exists()
    else:
        assert response.status_code == 200, response.content
        # The row must read back (PostgreSQL stores a year-0 timestamp that psycopg cannot
        # read, so every later read of it, the duplicate check included, would fail).
        assert list(InboundSms.objects.values_list("received_at", flat=True))
    again = send(market, "POST", SMS, json.dumps(body))
    assert again.status_code == 200, again.content
