"""What the agent learns from its modems, end to end: ports found by themselves, identity
from the SIM, the number from AT+CNUM or USSD, SIM and network state, and SMSC clocks."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from modems.models import InboundSms, Modem
from tests.agent.conftest import eventually, read
from tests.factories import make_agent, make_buyer

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="virtual modems need pseudo-terminals"),
    pytest.mark.django_db(transaction=True),
]


def test_ports_plugged_in_later_are_found_and_unplugged_ones_leave(
    live_server, site, modems, run_agent, whatsapp, tmp_path
):
    ports = tmp_path / "ports"
    ports.mkdir()
    reseller = make_agent()
    first = modems()
    (ports / "ttyUSB0").symlink_to(first.path)
    agent = run_agent(live_server.url, reseller.key, extra=("--scan-glob", f"{ports}/*"))
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the first modem found")

    second = modems()
    (ports / "ttyUSB1").symlink_to(second.path)
    eventually(lambda: site.stock(whatsapp.pk) == 2, timeout=10, what="the new modem found")

    first.close()
    (ports / "ttyUSB0").unlink()
    eventually(lambda: site.stock(whatsapp.pk) == 1, timeout=10, what="the unplugged one gone")
    assert agent.process.poll() is None


def test_a_modem_is_known_by_its_sim_whatever_the_port_or_model(live_server, modems, run_agent):
    reseller = make_agent()
    huawei = modems(iccid="89621000000000000123", iccid_command="^ICCID", phone="628991200001")
    quectel = modems(iccid="8962100000000000456F", iccid_command="+QCCID", phone="628991200002")
    no_iccid = modems(iccid=None, imsi="510109876543210", phone="628991200003")
    run_agent(live_server.url, reseller.key, huawei, quectel, no_iccid)
    eventually(lambda: Modem.objects.count() == 3, what="three modems synced")
    uids = read(lambda: dict(Modem.objects.values_list("phone_number", "uid")))
    assert uids == {
        "628991200001": "89621000000000000123",
        "628991200002": "8962100000000000456",
        "628991200003": "imsi-510109876543210",
    }


def test_the_number_comes_from_ussd_when_the_sim_does_not_know_it(
    live_server, modems, run_agent, tmp_path
):
    reseller = make_agent()
    modem = modems(
        phone=None,
        operator="TELKOMSEL",
        ussd={"*808#": "Nomor Anda adalah 6281234509876. Info: 188"},
    )
    unknown = modems(phone=None, operator="XL")
    agent = run_agent(
        live_server.url, reseller.key, modem, unknown, extra=("--ussd", "TELKOMSEL=*808#")
    )
    eventually(
        lambda: Modem.objects.filter(phone_number="6281234509876").exists(),
        what="the number from USSD synced",
    )
    time.sleep(2)
    assert read(lambda: Modem.objects.count()) == 1, (
        "a modem whose number is unknown is never synced"
    )

    status = subprocess.run(
        [sys.executable, "-m", "agent", "status", "--state", str(agent.state)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "6281234509876" in status
    assert "number unknown" in status


def test_a_modem_off_the_network_is_not_sold_until_it_registers(
    live_server, site, modems, run_agent, whatsapp
):
    reseller = make_agent()
    modem = modems(registered=False)
    run_agent(live_server.url, reseller.key, modem)
    eventually(lambda: Modem.objects.filter(can_order=False).exists(), what="synced, unable")
    assert site.stock(whatsapp.pk) == 0
    modem.registered = True
    eventually(lambda: site.stock(whatsapp.pk) == 1, timeout=10, what="on sale once registered")


def test_an_smsc_clock_far_off_gives_way_to_the_agents_time(
    live_server, site, modems, run_agent, whatsapp
):
    """A network whose SMSC stamps are an hour behind must not make every code look older
    than its order."""
    reseller, buyer = make_agent(), make_buyer(balance=5000)
    modem = modems()
    run_agent(live_server.url, reseller.key, modem)
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the modem in stock")
    order = site.order(buyer.key, whatsapp.pk)
    time.sleep(1)
    modem.deliver("WhatsApp", "Kode WhatsApp Anda: 404-101", datetime.now(UTC) - timedelta(hours=1))
    done = eventually(
        lambda: site.order_status(buyer.key, order["order_id"])["status"] == "completed",
        what="the code matched",
    )
    assert done
    sms = read(lambda: InboundSms.objects.get())
    assert abs((sms.received_at - datetime.now(UTC)).total_seconds()) < 30


def test_an_sms_stamped_before_the_order_does_not_complete_it(
    live_server, site, modems, run_agent, whatsapp
):
    """Within the five minutes the SMSC stamp is trusted: a late SMS for an earlier order of
    the same number is stored and matches nothing."""
    reseller, buyer = make_agent(), make_buyer(balance=5000)
    modem = modems()
    run_agent(live_server.url, reseller.key, modem)
    eventually(lambda: site.stock(whatsapp.pk) == 1, what="the modem in stock")
    order = site.order(buyer.key, whatsapp.pk)
    modem.deliver(
        "WhatsApp", "Kode WhatsApp Anda: 909-090", datetime.now(UTC) - timedelta(minutes=2)
    )
    eventually(lambda: InboundSms.objects.exists(), what="the SMS stored")
    assert site.order_status(buyer.key, order["order_id"])["status"] == "pending"


def test_a_number_found_later_is_synced_then(live_server, modems, run_agent):
    """A SIM that does not know its number at first (still booting) is asked again."""
    reseller = make_agent()
    modem = modems(phone=None)
    run_agent(live_server.url, reseller.key, modem)
    time.sleep(2)
    assert not read(lambda: Modem.objects.exists())
    modem.phone = "6289912399999"
    eventually(
        lambda: Modem.objects.filter(phone_number="6289912399999").exists(),
        what="synced once the number is known",
    )


def test_a_sim_keeps_its_uid_on_another_port(live_server, modems, run_agent, tmp_path):
    """Windows renumbers COM ports; a stick moves to another USB socket: same SIM, same modem."""
    reseller = make_agent()
    state = tmp_path / "state"
    first = run_agent(
        live_server.url, reseller.key, modems(iccid="89621000000000000777"), state=state
    )
    eventually(lambda: Modem.objects.exists(), what="synced")
    assert first.stop() == 0
    moved = modems(iccid="89621000000000000777")  # a new pty: another port name
    run_agent(live_server.url, reseller.key, moved, state=state)
    eventually(lambda: Modem.objects.filter(can_order=True).exists(), what="back on sale")
    assert read(lambda: list(Modem.objects.values_list("uid", flat=True))) == [
        "89621000000000000777"
    ]
