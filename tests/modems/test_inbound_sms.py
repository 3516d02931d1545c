"""POST /api/modem/inbound-sms (docs/API.md, "Modem-pool agent API" and "Order lifecycle"):
every SMS is stored; it is matched to the open order on that modem it belongs to, the OTP
is extracted, and the first match pays the reseller their share exactly once."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient

from billing.models import LedgerAccount, LedgerTransaction
from billing.services import wallet_balance
from modems.models import InboundSms, Modem
from orders.models import Application, Order
from orders.services import orders_expire
from tests.factories import Agent, ApplicationFactory, Buyer, ModemFactory, make_agent, make_buyer

pytestmark = pytest.mark.django_db

SEED_SMS = {
    "uid": "COM3",
    "phone_number": "628111",
    "from": "WhatsApp",
    "text": "Your code is 123-456",
}


@pytest.fixture
def whatsapp() -> Application:
    return ApplicationFactory(
        name="WhatsApp",
        code="whatsapp",
        prices={"normal": 3333},
        sender_patterns="\\bwhats\\s?app\\b\n\\bwa\\b",
    )


@pytest.fixture
def telegram() -> Application:
    return ApplicationFactory(
        name="Telegram",
        code="telegram",
        prices={"normal": 2000},
        sender_patterns="\\btelegram\\b\n\\bt\\.me/",
    )


@pytest.fixture
def anything() -> Application:
    """An application with no sender patterns: it takes any SMS."""
    return ApplicationFactory(name="Anything", code="anything", prices={"normal": 1000})


@pytest.fixture
def modem(agent: Agent) -> Modem:
    return ModemFactory(reseller=agent.user, uid="COM3", phone_number="628111")


def place_order(client: APIClient, buyer: Buyer, app: Application) -> int:
    response = client.post(
        "/api/v1/orders", {"application_id": app.pk}, format="json", **buyer.headers
    )
    assert response.status_code == 201, response.json()
    return response.json()["order_id"]


def report(client: APIClient, agent: Agent, body: Any) -> Response:
    return client.post(
        "/api/modem/inbound-sms",
        data=json.dumps(body),
        content_type="application/json",
        **agent.headers,
    )


def sms(client: APIClient, agent: Agent, **fields: Any) -> dict:
    response = report(client, agent, {**SEED_SMS, **fields})
    assert response.status_code == 200, response.json()
    return response.json()


def read_order(client: APIClient, buyer: Buyer, order_id: int) -> dict:
    response = client.get(f"/api/v1/orders/{order_id}", **buyer.headers)
    assert response.status_code == 200
    return response.json()


def platform_balance(kind: str) -> int:
    account = LedgerAccount.objects.filter(kind=kind, user__isnull=True).first()
    return account.balance if account else 0


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def captures() -> int:
    return LedgerTransaction.objects.filter(kind="capture").count()


NO_MATCH = {"matched": False, "order_id": None, "otp": None}


# --- The seed's exchange and the money ------------------------------------------------------


def test_seed_sms_completes_the_order_with_the_code(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    before = timezone.now()

    response = report(client, agent, SEED_SMS)

    assert response.status_code == 200
    assert response.json() == {"matched": True, "order_id": order_id, "otp": "123456"}
    body = read_order(client, buyer, order_id)
    assert body["status"] == "completed"
    assert body["otp_code"] == "123456"
    assert body["sms_text"] == "Your code is 123-456"
    assert len(body["messages"]) == 1
    message = body["messages"][0]
    assert set(message) == {"from", "text", "otp_code", "received_at"}
    assert (message["from"], message["text"], message["otp_code"]) == (
        "WhatsApp",
        "Your code is 123-456",
        "123456",
    )
    received = datetime.fromisoformat(message["received_at"].replace("Z", "+00:00"))
    assert message["received_at"].endswith("Z")
    assert before - timedelta(seconds=1) <= received <= timezone.now()


def test_the_first_match_pays_the_reseller_seventy_percent_rounded_down(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    place_order(client, buyer, whatsapp)
    assert platform_balance("escrow") == 3333
    assert wallet_balance(agent.user) == 0

    sms(client, agent)

    assert wallet_balance(agent.user) == 2333
    assert platform_balance("revenue") == 1000
    assert platform_balance("escrow") == 0
    assert wallet_balance(buyer.user) == 100_000 - 3333
    assert Order.objects.get().reseller_share == 2333


def test_a_second_sms_for_a_completed_order_is_matched_but_not_paid_again(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    sms(client, agent)

    second = sms(client, agent, text="Your WhatsApp code is 654-321")

    assert second == {"matched": True, "order_id": order_id, "otp": "654321"}
    body = read_order(client, buyer, order_id)
    assert body["status"] == "completed"
    assert [m["otp_code"] for m in body["messages"]] == ["123456", "654321"]
    assert body["otp_code"] == "654321"
    assert body["sms_text"] == "Your WhatsApp code is 654-321"
    assert wallet_balance(agent.user) == 2333
    assert platform_balance("revenue") == 1000
    assert captures() == 1


# --- What is stored, what matches nothing ----------------------------------------------------


def test_an_unknown_uid_is_not_found(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    response = report(client, agent, {**SEED_SMS, "uid": "COM99"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert InboundSms.objects.count() == 0
    assert Order.objects.get(pk=order_id).status == "pending"


def test_a_reseller_cannot_report_an_sms_for_another_resellers_modem(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    intruder = make_agent()

    response = report(client, intruder, SEED_SMS)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert InboundSms.objects.count() == 0
    assert Order.objects.get(pk=order_id).status == "pending"
    assert wallet_balance(intruder.user) == 0
    assert wallet_balance(agent.user) == 0


def test_an_sms_without_a_code_is_stored_and_matches_nothing(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    result = sms(client, agent, text="Selamat datang di WhatsApp")

    assert result == NO_MATCH
    stored = InboundSms.objects.get()
    assert (stored.modem_id, stored.sender, stored.text) == (
        modem.pk,
        "WhatsApp",
        "Selamat datang di WhatsApp",
    )
    assert stored.otp_code is None
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.otp_code, order.sms_text) == ("pending", None, None)
    assert platform_balance("escrow") == 3333


def test_an_sms_with_no_open_order_is_stored_and_matches_nothing(
    client: APIClient, agent: Agent, modem: Modem, whatsapp: Application
) -> None:
    result = sms(client, agent)

    assert result == NO_MATCH
    stored = InboundSms.objects.get()
    assert (stored.modem_id, stored.reseller_id) == (modem.pk, agent.user.pk)
    assert (stored.sender, stored.text) == ("WhatsApp", "Your code is 123-456")


def test_an_sms_for_another_application_matches_nothing(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, telegram: Application
) -> None:
    order_id = place_order(client, buyer, telegram)

    result = sms(client, agent)  # WhatsApp's SMS on a modem holding only a Telegram order

    assert result == NO_MATCH
    assert Order.objects.get(pk=order_id).status == "pending"
    assert InboundSms.objects.count() == 1


def test_an_sms_on_another_modem_does_not_match_the_order(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    ModemFactory(reseller=agent.user, uid="COM4")

    result = sms(client, agent, uid="COM4")

    assert result == NO_MATCH
    assert Order.objects.get(pk=order_id).status == "pending"


def test_a_phone_number_that_differs_from_the_modems_does_not_stop_the_match(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    result = sms(client, agent, phone_number="+62 899-9000-111")

    assert result == {"matched": True, "order_id": order_id, "otp": "123456"}
    assert InboundSms.objects.get().phone_number == "628999000111"


def test_an_sms_without_a_phone_number_still_matches(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    body = {key: value for key, value in SEED_SMS.items() if key != "phone_number"}

    response = report(client, agent, body)

    assert response.status_code == 200
    assert response.json() == {"matched": True, "order_id": order_id, "otp": "123456"}


# --- Which order an SMS belongs to -----------------------------------------------------------


def test_waktu_in_a_text_does_not_make_it_a_whatsapp_sms(
    client: APIClient,
    agent: Agent,
    buyer: Buyer,
    modem: Modem,
    whatsapp: Application,
    anything: Application,
) -> None:
    whatsapp_order = place_order(client, buyer, whatsapp)
    anything_order = place_order(client, buyer, anything)

    result = sms(
        client,
        agent,
        **{"from": "INFO", "text": "Kode verifikasi Anda 4321, berlaku dalam waktu 5 menit"},
    )

    assert result == {"matched": True, "order_id": anything_order, "otp": "4321"}
    assert Order.objects.get(pk=whatsapp_order).status == "pending"
    assert Order.objects.get(pk=anything_order).status == "completed"


def test_wa_as_a_word_makes_it_a_whatsapp_sms(
    client: APIClient,
    agent: Agent,
    buyer: Buyer,
    modem: Modem,
    whatsapp: Application,
    anything: Application,
) -> None:
    anything_order = place_order(client, buyer, anything)
    whatsapp_order = place_order(client, buyer, whatsapp)

    result = sms(client, agent, **{"from": "INFO", "text": "Kode WA Anda 4321"})

    assert result == {"matched": True, "order_id": whatsapp_order, "otp": "4321"}
    assert Order.objects.get(pk=anything_order).status == "pending"


def test_a_pattern_matched_order_beats_an_older_order_without_patterns(
    client: APIClient,
    agent: Agent,
    buyer: Buyer,
    modem: Modem,
    whatsapp: Application,
    anything: Application,
) -> None:
    anything_order = place_order(client, buyer, anything)
    whatsapp_order = place_order(client, buyer, whatsapp)
    Order.objects.filter(pk=anything_order).update(created_at=timezone.now() - timedelta(minutes=5))

    result = sms(client, agent)

    assert result == {"matched": True, "order_id": whatsapp_order, "otp": "123456"}
    assert Order.objects.get(pk=anything_order).status == "pending"


def test_sender_patterns_are_case_insensitive(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, telegram: Application
) -> None:
    order_id = place_order(client, buyer, telegram)

    result = sms(client, agent, **{"from": "TELEGRAM", "text": "Login code: 52817"})

    assert result == {"matched": True, "order_id": order_id, "otp": "52817"}


def test_the_sms_goes_to_the_application_whose_pattern_matched(
    client: APIClient,
    agent: Agent,
    buyer: Buyer,
    modem: Modem,
    whatsapp: Application,
    telegram: Application,
) -> None:
    whatsapp_order = place_order(client, buyer, whatsapp)
    telegram_order = place_order(client, buyer, telegram)

    result = sms(client, agent, **{"from": "Telegram", "text": "Telegram code: 52817"})

    assert result == {"matched": True, "order_id": telegram_order, "otp": "52817"}
    assert Order.objects.get(pk=whatsapp_order).status == "pending"


def test_among_equals_a_pending_order_beats_an_older_completed_one(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, anything: Application
) -> None:
    other = ApplicationFactory(prices={"normal": 1500})
    older = place_order(client, buyer, anything)
    younger = place_order(client, buyer, other)
    Order.objects.filter(pk=older).update(created_at=timezone.now() - timedelta(minutes=5))

    first = sms(client, agent, **{"from": "INFO", "text": "Your code is 111222"})
    second = sms(client, agent, **{"from": "INFO", "text": "Your code is 333444"})

    assert first == {"matched": True, "order_id": older, "otp": "111222"}
    assert second == {"matched": True, "order_id": younger, "otp": "333444"}
    assert len(read_order(client, buyer, older)["messages"]) == 1


def test_among_equals_the_oldest_order_wins(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, anything: Application
) -> None:
    other = ApplicationFactory(prices={"normal": 1500})
    first_placed = place_order(client, buyer, anything)
    second_placed = place_order(client, buyer, other)
    # The order placed second is the older one by the clock.
    Order.objects.filter(pk=second_placed).update(created_at=timezone.now() - timedelta(minutes=5))

    result = sms(client, agent, **{"from": "INFO", "text": "Your code is 111222"})

    assert result == {"matched": True, "order_id": second_placed, "otp": "111222"}
    assert Order.objects.get(pk=first_placed).status == "pending"


def test_among_pattern_matched_orders_the_oldest_wins(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    business = ApplicationFactory(
        name="WhatsApp Business", prices={"normal": 4000}, sender_patterns="\\bwhats\\s?app\\b"
    )
    first_placed = place_order(client, buyer, business)
    second_placed = place_order(client, buyer, whatsapp)
    Order.objects.filter(pk=second_placed).update(created_at=timezone.now() - timedelta(minutes=5))

    result = sms(client, agent)

    assert result == {"matched": True, "order_id": second_placed, "otp": "123456"}
    assert Order.objects.get(pk=first_placed).status == "pending"


def test_an_sms_received_before_the_order_was_created_never_matches_it(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    created_at = Order.objects.get(pk=order_id).created_at

    early = sms(client, agent, received_at=iso(created_at - timedelta(seconds=30)))

    assert early == NO_MATCH
    assert Order.objects.get(pk=order_id).status == "pending"
    assert InboundSms.objects.count() == 1

    late = sms(
        client,
        agent,
        text="Your code is 654-321",
        received_at=iso(created_at + timedelta(seconds=1)),
    )

    assert late == {"matched": True, "order_id": order_id, "otp": "654321"}


def test_an_sms_after_expires_at_is_refused_and_the_order_later_expires_with_a_refund(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    result = sms(client, agent)

    assert result == NO_MATCH
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.otp_code, order.sms_text) == ("pending", None, None)
    assert InboundSms.objects.count() == 1
    assert read_order(client, buyer, order_id)["status"] == "expired"
    assert wallet_balance(agent.user) == 0

    assert orders_expire() == 1

    assert Order.objects.get(pk=order_id).status == "expired"
    assert wallet_balance(buyer.user) == 100_000
    assert platform_balance("escrow") == 0
    assert wallet_balance(agent.user) == 0


def test_an_sms_after_a_completed_order_expired_is_not_matched(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    sms(client, agent)
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    result = sms(client, agent, text="Your WhatsApp code is 654-321")

    assert result == NO_MATCH
    body = read_order(client, buyer, order_id)
    assert body["status"] == "finished"
    assert body["otp_code"] == "123456"
    assert len(body["messages"]) == 1


def test_an_sms_for_a_cancelled_order_matches_nothing(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    assert client.post(f"/api/v1/orders/{order_id}/cancel", **buyer.headers).status_code == 200

    result = sms(client, agent)

    assert result == NO_MATCH
    assert Order.objects.get(pk=order_id).status == "cancelled"
    assert wallet_balance(buyer.user) == 100_000
    assert wallet_balance(agent.user) == 0


# --- Duplicates ------------------------------------------------------------------------------


def test_the_same_message_id_twice_answers_the_first_and_pays_once(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    first = sms(client, agent, message_id="agent-42")
    second = sms(client, agent, message_id="agent-42")

    assert first == {"matched": True, "order_id": order_id, "otp": "123456"}
    assert second == first
    assert InboundSms.objects.count() == 1
    assert len(read_order(client, buyer, order_id)["messages"]) == 1
    assert wallet_balance(agent.user) == 2333
    assert captures() == 1


def test_the_same_message_id_with_another_text_is_still_the_first_sms(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    first = sms(client, agent, message_id="agent-42")
    second = sms(client, agent, message_id="agent-42", text="Your WhatsApp code is 654-321")

    assert second == first
    assert InboundSms.objects.count() == 1
    assert read_order(client, buyer, order_id)["otp_code"] == "123456"


def test_an_unmatched_sms_sent_again_answers_unmatched_again(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    first = sms(client, agent, message_id="agent-7")
    place_order(client, buyer, whatsapp)

    second = sms(client, agent, message_id="agent-7")

    assert first == second == NO_MATCH
    assert InboundSms.objects.count() == 1
    assert wallet_balance(agent.user) == 0


def test_the_same_sms_without_message_id_within_ten_minutes_answers_the_first(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    first = sms(client, agent)
    second = sms(client, agent)

    assert first == {"matched": True, "order_id": order_id, "otp": "123456"}
    assert second == first
    assert InboundSms.objects.count() == 1
    assert len(read_order(client, buyer, order_id)["messages"]) == 1
    assert wallet_balance(agent.user) == 2333
    assert captures() == 1


def test_the_same_text_after_ten_minutes_is_a_new_sms(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    sms(client, agent)
    InboundSms.objects.update(created_at=timezone.now() - timedelta(minutes=11))

    again = sms(client, agent)

    assert again == {"matched": True, "order_id": order_id, "otp": "123456"}
    assert InboundSms.objects.count() == 2
    assert len(read_order(client, buyer, order_id)["messages"]) == 2
    assert wallet_balance(agent.user) == 2333


def test_the_same_text_from_another_sender_is_a_new_sms(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    order_id = place_order(client, buyer, whatsapp)
    sms(client, agent)

    again = sms(client, agent, **{"from": "WA"})

    assert again == {"matched": True, "order_id": order_id, "otp": "123456"}
    assert InboundSms.objects.count() == 2


def test_the_same_message_id_from_another_reseller_is_a_different_sms(
    client: APIClient, agent: Agent, buyer: Buyer, modem: Modem, whatsapp: Application
) -> None:
    mine = place_order(client, buyer, whatsapp)
    sms(client, agent, message_id="m-1")
    other = make_agent()
    ModemFactory(reseller=other.user, uid="COM3", phone_number="628222")
    other_buyer = make_buyer(balance=10_000)
    theirs = place_order(client, other_buyer, whatsapp)

    result = sms(client, other, message_id="m-1", phone_number="628222")

    assert result == {"matched": True, "order_id": theirs, "otp": "123456"}
    assert theirs != mine
    assert InboundSms.objects.count() == 2
    assert wallet_balance(other.user) == 2333
    assert wallet_balance(agent.user) == 2333


# --- Malformed requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in SEED_SMS.items() if k != "text"},
        {**SEED_SMS, "text": 123456},
        {**SEED_SMS, "text": None},
        {k: v for k, v in SEED_SMS.items() if k != "from"},
        {**SEED_SMS, "from": 5},
        {k: v for k, v in SEED_SMS.items() if k != "uid"},
        {**SEED_SMS, "uid": 3},
        {**SEED_SMS, "received_at": "yesterday"},
        {**SEED_SMS, "received_at": 1700000000},
        {**SEED_SMS, "message_id": 42},
        {**SEED_SMS, "phone_number": "abc"},
        [SEED_SMS],
        "Your code is 123-456",
        None,
    ],
    ids=repr,
)
def test_a_malformed_body_is_refused_and_stores_nothing(
    client: APIClient,
    agent: Agent,
    buyer: Buyer,
    modem: Modem,
    whatsapp: Application,
    body: Any,
) -> None:
    order_id = place_order(client, buyer, whatsapp)

    response = report(client, agent, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert InboundSms.objects.count() == 0
    assert Order.objects.get(pk=order_id).status == "pending"
    assert wallet_balance(agent.user) == 0


def test_invalid_json_is_refused_and_stores_nothing(
    client: APIClient, agent: Agent, modem: Modem
) -> None:
    response = client.post(
        "/api/modem/inbound-sms",
        data='{"uid": "COM3", "text": ',
        content_type="application/json",
        **agent.headers,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert InboundSms.objects.count() == 0


def test_inbound_sms_without_an_agent_key_is_refused(client: APIClient, modem: Modem) -> None:
    response = client.post("/api/modem/inbound-sms", SEED_SMS, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_agent_key"
    assert InboundSms.objects.count() == 0
