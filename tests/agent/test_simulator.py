"""`python -m agent simulate`: virtual modems for a newcomer's demo and for load."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from agent.simulator import TEMPLATES, otp_text, sender_id
from modems.models import InboundSms, Modem
from orders.otp import extract_otp
from tests.agent.conftest import eventually, read
from tests.factories import ApplicationFactory, make_agent, make_buyer

posix_only = pytest.mark.skipif(os.name != "posix", reason="virtual modems need pseudo-terminals")


def simulate(server: str, key: str, state: Path, *options: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "ZEROTP"))}
    state.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "simulate",
            "--server",
            server,
            "--agent-key",
            key,
            "--state",
            str(state),
            "--heartbeat-seconds",
            "1",
            *options,
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=(state / "out.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


@pytest.mark.parametrize("application", ["WhatsApp", "Telegram", "Mobile Legends", "X"])
def test_every_simulated_code_is_one_the_server_reads(application: str) -> None:
    import random

    rng = random.Random(7)
    for _ in range(50):
        text = otp_text(application, rng)
        assert extract_otp(text), text
    assert len(sender_id(application)) <= 11
    assert len(TEMPLATES) >= 4


@posix_only
@pytest.mark.django_db(transaction=True)
def test_the_simulator_answers_an_order_with_a_code(live_server, site, tmp_path) -> None:
    app = ApplicationFactory(
        name="WhatsApp", code="whatsapp", sender_patterns=r"\bwhatsapp\b", prices={"normal": 5000}
    )
    reseller, buyer = make_agent(), make_buyer(balance=5000)
    process = simulate(
        live_server.url, reseller.key, tmp_path / "sim", "--modems", "2", "--answer-orders"
    )
    try:
        eventually(lambda: site.stock(app.pk) == 2, what="two simulated modems in stock")
        order = site.order(buyer.key, app.pk)
        done = eventually(
            lambda: (
                (s := site.order_status(buyer.key, order["order_id"]))["status"] == "completed"
                and s
            ),
            timeout=20,
            what="the simulated code",
        )
        assert done["otp_code"]
        assert done["messages"][0]["from"] == "WhatsApp"
    finally:
        assert stop(process) == 0
    # A restart brings the same virtual SIMs back: no new modems on the server.
    again = simulate(live_server.url, reseller.key, tmp_path / "sim", "--modems", "2")
    try:
        time.sleep(3)
        assert read(lambda: Modem.objects.count()) == 2
    finally:
        assert stop(again) == 0


@posix_only
@pytest.mark.django_db(transaction=True)
def test_load_mode_loses_no_sms(live_server, tmp_path) -> None:
    reseller = make_agent()
    state = tmp_path / "load"
    process = simulate(
        live_server.url, reseller.key, state, "--modems", "3", "--sms-per-second", "20"
    )
    eventually(lambda: InboundSms.objects.count() >= 40, timeout=30, what="40 SMS delivered")
    assert stop(process) == 0
    db = sqlite3.connect(state / "outbox.sqlite3")
    counts = dict(db.execute("SELECT state, count(*) FROM messages GROUP BY state"))
    db.close()
    assert counts.get("dead", 0) == 0
    assert read(lambda: InboundSms.objects.count()) == counts["sent"]
