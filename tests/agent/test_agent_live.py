"""The agent end to end: its own process, virtual modems on pseudo-terminals speaking AT
commands, and the live server over real HTTP (SQLite or PostgreSQL, as the suite runs)."""

import os
import time
from datetime import UTC, datetime

import pytest
import requests

from billing.services import wallet_balance
from modems.models import InboundSms, Modem
from modems.services import modems_mark_offline
from orders.models import Order
from tests.agent.conftest import PRICE, eventually, read
from tests.factories import make_agent, make_buyer

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="virtual modems need pseudo-terminals"),
    pytest.mark.django_db(transaction=True),
]

SHARE = PRICE * 70 // 100


def synced(count: int) -> bool:
    return Modem.objects.filter(phone_number__isnull=False).count() >= count


def completed(site, key: str, order_id: int) -> dict | None:
    status = site.order_status(key, order_id)
    return status if status["status"] == "completed" else None


def test_an_order_completes_from_a_multipart_ucs2_sms_with_an_emoji(
    live_server, site, modems, run_agent, whatsapp
):
    reseller, buyer = make_agent(), make_buyer(balance=PRICE)
    modem = modems(phone="6289911100001")
    agent = run_agent(live_server.url, reseller.key, modem)
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the modem in stock")

    order = site.order(buyer.key, whatsapp.pk)
    assert order["phone_number"] == "6289911100001"
    # 66 BMP characters, then an emoji whose surrogate pair the network splits across parts
    # (a part holds 67 UTF-16 units).
    text = "Kode WhatsApp Anda adalah 482-913. Jangan bagikan kode ini kepada " + (
        "🔐 siapa pun, termasuk pihak WhatsApp. Berlaku lima menit ✅"
    )
    assert text.index("🔐") == 66
    slots = modem.deliver("WhatsApp", text, split_surrogates=True)
    assert len(slots) == 2

    done = eventually(lambda: completed(site, buyer.key, order["order_id"]), what="the code")
    assert done["otp_code"] == "482913"
    assert done["sms_text"] == text
    assert modem.stored() == {}, "the SIM is emptied"
    assert read(lambda: InboundSms.objects.get().text) == text
    assert read(lambda: wallet_balance(reseller.user)) == SHARE
    assert f"order {order['order_id']}, code 482913" in agent.output()


def test_sms_arriving_while_the_server_is_down_leave_the_sim_and_are_delivered_once(
    live_server, site, gate, modems, run_agent, whatsapp
):
    reseller, buyer = make_agent(), make_buyer(balance=2 * PRICE)
    first, second = modems(phone="6289911100011"), modems(phone="6289911100012")
    agent = run_agent(gate.url, reseller.key, first, second)
    eventually(lambda: site.stock(whatsapp.pk) == 2, what="both modems in stock")
    orders = [site.order(buyer.key, whatsapp.pk) for _ in range(2)]
    by_phone = {first.phone: first, second.phone: second}

    gate.down()
    down_at = time.monotonic()
    for n, order in enumerate(orders):
        by_phone[order["phone_number"]].deliver("WhatsApp", f"Kode WhatsApp Anda: 11{n}-22{n}")
    eventually(lambda: not first.stored() and not second.stored(), what="the SIMs emptied")
    eventually(lambda: agent.outbox().get("waiting") == 2, what="two SMS in the outbox")
    assert read(lambda: InboundSms.objects.count()) == 0

    time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
    gate.up()
    for n, order in enumerate(orders):
        done = eventually(
            lambda order=order: completed(site, buyer.key, order["order_id"]),
            timeout=75,  # the backoff waits at most 60 s between tries
            what="delivery after the server came back",
        )
        assert done["otp_code"] == f"11{n}22{n}"
    eventually(lambda: agent.outbox().get("sent") == 2, what="the outbox settled")
    assert read(lambda: InboundSms.objects.count()) == 2
    assert read(lambda: wallet_balance(reseller.user)) == 2 * SHARE


def test_an_agent_killed_with_an_sms_in_its_outbox_delivers_it_once_after_a_restart(
    live_server, site, gate, modems, run_agent, whatsapp, tmp_path
):
    reseller, buyer = make_agent(), make_buyer(balance=PRICE)
    modem = modems(phone="6289911100021")
    state = tmp_path / "state"
    agent = run_agent(gate.url, reseller.key, modem, state=state)
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the modem in stock")
    order = site.order(buyer.key, whatsapp.pk)

    gate.down()
    modem.deliver("WhatsApp", "Kode WhatsApp Anda: 314-159")
    eventually(
        lambda: agent.outbox().get("waiting") == 1 and not modem.stored(),
        what="the SMS in the outbox and off the SIM",
    )
    agent.kill()
    gate.up()

    restarted = run_agent(gate.url, reseller.key, modem, state=state)
    done = eventually(lambda: completed(site, buyer.key, order["order_id"]), what="the code")
    assert done["otp_code"] == "314159"
    eventually(lambda: restarted.outbox() == {"sent": 1}, what="the outbox settled")
    assert read(lambda: InboundSms.objects.count()) == 1
    assert read(lambda: wallet_balance(reseller.user)) == SHARE


def test_an_sms_read_again_after_a_crash_before_its_deletion_is_posted_once(
    live_server, site, modems, run_agent, whatsapp
):
    """A crash between the outbox commit and AT+CMGD leaves the SMS on the SIM: the next run
    reads the same PDU again, and the outbox keeps it once."""
    reseller, buyer = make_agent(), make_buyer(balance=PRICE)
    modem = modems(phone="6289911100031")
    agent = run_agent(live_server.url, reseller.key, modem)
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the modem in stock")
    order = site.order(buyer.key, whatsapp.pk)
    stamp = datetime.now(UTC).replace(microsecond=0)

    modem.deliver("WhatsApp", "Kode WhatsApp Anda: 271-828", stamp)
    eventually(lambda: completed(site, buyer.key, order["order_id"]), what="the code")
    modem.deliver("WhatsApp", "Kode WhatsApp Anda: 271-828", stamp)  # the very same PDU
    eventually(lambda: not modem.stored(), what="the SIM emptied")
    time.sleep(2)
    assert agent.outbox() == {"sent": 1}
    assert read(lambda: InboundSms.objects.count()) == 1
    assert read(lambda: wallet_balance(reseller.user)) == SHARE


def test_an_unplugged_modem_leaves_the_stock_and_the_others_keep_working(
    live_server, site, modems, run_agent, whatsapp
):
    reseller, buyer = make_agent(), make_buyer(balance=PRICE)
    plugged = [modems(phone=f"628991110004{n}") for n in range(3)]
    agent = run_agent(live_server.url, reseller.key, *plugged)
    eventually(lambda: site.stock(whatsapp.pk) == 3, what="three modems in stock")

    plugged[0].close()
    eventually(
        lambda: site.stock(whatsapp.pk) == 2,
        timeout=10,
        what="the unplugged modem out of the stock",
    )
    assert agent.process.poll() is None, "the agent keeps running"

    order = site.order(buyer.key, whatsapp.pk)
    assert order["phone_number"] != plugged[0].phone
    modem = next(m for m in plugged if m.phone == order["phone_number"])
    modem.deliver("WhatsApp", "Kode WhatsApp Anda: 161-803")
    done = eventually(lambda: completed(site, buyer.key, order["order_id"]), what="the code")
    assert done["otp_code"] == "161803"


def test_a_stopped_agent_takes_its_modems_off_sale_at_once(
    live_server, site, modems, run_agent, whatsapp, settings
):
    settings.MODEM_ONLINE_SECONDS = 60
    reseller = make_agent()
    agent = run_agent(live_server.url, reseller.key, modems(), modems())
    eventually(lambda: site.stock(whatsapp.pk) == 2, what="two modems in stock")

    assert agent.stop() == 0, agent.output()
    assert site.stock(whatsapp.pk) == 0, "no waiting for MODEM_ONLINE_SECONDS"
    assert "modems taken off sale" in agent.output()


def test_a_crashed_agents_modems_are_refused_then_leave_the_stock(
    live_server, site, modems, run_agent, whatsapp, settings
):
    """Once heartbeats stop for MODEM_ONLINE_SECONDS, no order gets the modems (the pick
    checks the heartbeat's age); the offline job, which the worker runs every minute,
    then takes them out of the stock's counts."""
    settings.MODEM_ONLINE_SECONDS = 4
    reseller, buyer = make_agent(), make_buyer(balance=PRICE)
    agent = run_agent(live_server.url, reseller.key, modems(), modems())
    eventually(lambda: site.stock(whatsapp.pk) == 2, what="two modems in stock")
    time.sleep(6)  # longer than MODEM_ONLINE_SECONDS: heartbeats keep them online
    assert site.stock(whatsapp.pk) == 2

    agent.kill()
    time.sleep(4 + 1.5)  # the last heartbeat came at most 1 s before the kill
    refused = requests.post(
        f"{live_server.url}/api/v1/orders",
        json={"application_id": whatsapp.pk},
        headers={"X-API-KEY": buyer.key},
        timeout=10,
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "out_of_stock"
    assert site.stock(whatsapp.pk) == 2  # until the job runs

    assert modems_mark_offline() == 2
    assert site.stock(whatsapp.pk) == 0


def test_a_refused_agent_key_stops_the_agent_with_exit_code_2(live_server, modems, run_agent):
    agent = run_agent(live_server.url, "ztp_agent_not-a-key", modems())
    assert agent.process.wait(20) == 2
    assert "refused the agent key" in agent.output()


def test_a_second_agent_on_the_same_state_folder_is_refused(
    live_server, modems, run_agent, tmp_path
):
    reseller = make_agent()
    state = tmp_path / "shared"
    first = run_agent(live_server.url, reseller.key, modems(), state=state)
    eventually(lambda: Modem.objects.exists(), what="the first agent synced")
    second = run_agent(live_server.url, reseller.key, modems(), state=state)
    assert second.process.wait(20) == 2
    assert "already using the state folder" in second.output()
    assert first.process.poll() is None


def test_orders_of_other_modems_are_untouched(live_server, site, modems, run_agent, whatsapp):
    """An SMS on a modem without an open order is stored and matches nothing."""
    reseller = make_agent()
    modem = modems(phone="6289911100051")
    run_agent(live_server.url, reseller.key, modem)
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the modem in stock")
    modem.deliver("TELKOMSEL", "Sisa kuota Anda 2 GB, berlaku s.d. 31-12-2026.")
    sms = eventually(lambda: InboundSms.objects.first(), what="the SMS stored")
    assert sms.sender == "TELKOMSEL"
    assert not read(lambda: Order.objects.exists())
