"""`python -m agent simulate`: the real agent against virtual modems on pseudo-terminals.

Nothing here short-cuts the agent: the modems answer AT commands on real ttys, the agent
finds their numbers with AT+CNUM, reads PDUs, keeps them in its outbox and posts them.
With `--answer-orders` each new order on a virtual number gets an OTP SMS a few seconds
later, from the application's name, in one of the shapes real services send. POSIX only.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from pathlib import Path

from agent.modem import PortSpec
from agent.outbox import Outbox
from agent.runner import Agent, Settings
from agent.server import Server, ServerError

log = logging.getLogger("zerotp.agent")

# Shapes of real OTP messages (see the server's OTP corpus); {app} keeps the sender patterns
# of the catalogue matching, {code} is the code as the service writes it.
TEMPLATES = (
    "<#> Kode {app} Anda: {c3}-{c3b}. Jangan bagikan kode ini kepada siapa pun.",
    "{c6} adalah kode verifikasi {app} Anda. Berlaku 5 menit.",
    "[{app}] {c4} is your verification code, valid for 10 minutes. Don't share it.",
    "{app} code: {c5}. Do not give this code to anyone, even if they say they are from {app}!",
    "Your {app} code is {c6} 🔐 Never share it with anyone.",
)
RANDOM_SENDERS = ("WhatsApp", "Telegram", "Google", "Shopee", "TELKOMSEL", "+6281100200300")
OPERATORS = ("TELKOMSEL", "XL", "INDOSAT", "3", "SMARTFREN")


def otp_text(application: str, rng: random.Random) -> str:
    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    template = rng.choice(TEMPLATES)
    return template.format(
        app=application, c3=digits(3), c3b=digits(3), c4=digits(4), c5=digits(5), c6=digits(6)
    )


def sender_id(application: str) -> str:
    """An alphanumeric sender id: at most 11 characters, as the network carries them."""
    return "".join(ch for ch in application if ch.isalnum() or ch in " -.")[:11].strip() or "OTP"


def _identities(state: Path, count: int) -> list[dict[str, str]]:
    """The virtual SIMs, kept in the state folder so a restart brings the same numbers back."""
    path = state / "simulator.json"
    try:
        sims = json.loads(path.read_text())["sims"]
    except (OSError, ValueError, KeyError):
        sims = []
    base = sims[0]["phone"][-9:-3] if sims else f"{secrets.randbelow(10**6):06d}"
    while len(sims) < count:
        n = len(sims)
        sims.append(
            {
                "iccid": f"8962{base}{n:09d}"[:19],
                "imsi": f"51010{base}{n:04d}",
                "phone": f"62899{base}{n:03d}",
                "operator": OPERATORS[n % len(OPERATORS)],
            }
        )
    path.write_text(json.dumps({"sims": sims}, indent=1))
    return sims[:count]


class OrderAnswerer(threading.Thread):
    """Plays the application: texts a code to each new order's number a few seconds later."""

    def __init__(
        self,
        server: Server,
        modems: dict[str, object],
        stop: threading.Event,
        *,
        delay: tuple[float, float] = (2.0, 5.0),
        seed: int | None = None,
    ) -> None:
        super().__init__(name="answer-orders", daemon=True)
        self.server = server
        self.modems = modems  # uid -> VirtualModem
        self.stop = stop
        self.delay = delay
        self.rng = random.Random(seed)
        self.answered: set[int] = set()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                orders = self.server.open_orders()
            except ServerError as exc:
                log.debug("open orders: %s", exc)
                continue
            for order in orders:
                modem = self.modems.get(order.get("uid"))
                if modem is None or order["order_id"] in self.answered:
                    continue
                self.answered.add(order["order_id"])
                wait = self.rng.uniform(*self.delay)
                text = otp_text(order["application"], self.rng)
                timer = threading.Timer(wait, self._send, (modem, order, text))
                timer.daemon = True
                timer.start()

    def _send(self, modem: object, order: dict, text: str) -> None:
        if self.stop.is_set():
            return
        sender = sender_id(order["application"])
        log.info(
            "simulator: %s texts %s for order %s", sender, order["phone_number"], order["order_id"]
        )
        modem.deliver(sender, text)  # type: ignore[attr-defined]


class Load(threading.Thread):
    """Load mode: random SMS at a steady rate over all the virtual modems."""

    def __init__(self, modems: list[object], rate: float, stop: threading.Event) -> None:
        super().__init__(name="sms-load", daemon=True)
        self.modems = modems
        self.rate = rate
        self.stop = stop
        self.sent = 0

    def run(self) -> None:
        from agent.virtual_modem import SimFull

        rng = random.Random()
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += interval
            modem = rng.choice(self.modems)
            try:
                modem.deliver(rng.choice(RANDOM_SENDERS), otp_text("ZeroTP", rng))  # type: ignore[attr-defined]
                self.sent += 1
            except SimFull:
                log.warning("simulator: a SIM is full; the agent is not keeping up")
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def simulate(
    *,
    server: Server,
    outbox: Outbox,
    modems: int,
    answer_orders: bool,
    sms_per_second: float,
    heartbeat_seconds: float,
    mapping: str,
    stop: threading.Event,
) -> int:
    from agent.virtual_modem import VirtualModem

    virtual = []
    for sim in _identities(outbox.path.parent, modems):
        modem = VirtualModem(
            iccid=sim["iccid"],
            imsi=sim["imsi"],
            phone=sim["phone"],
            operator=sim["operator"],
            csq=random.randint(12, 31),
        ).start()
        virtual.append(modem)
        log.info("simulator: virtual modem %s on %s (+%s)", sim["iccid"], modem.path, sim["phone"])
    settings = Settings(
        ports=[PortSpec(m.path, mapping=mapping) for m in virtual],
        heartbeat_seconds=heartbeat_seconds,
        scan_seconds=5.0,
    )
    agent = Agent(server=server, outbox=outbox, settings=settings, stop=stop)
    try:
        try:
            agent.check_key()
        except ServerError as exc:
            log.error("the server refused the agent key (%s)", exc)
            return 2
        if answer_orders:
            OrderAnswerer(server, {m.iccid: m for m in virtual}, stop).start()
        if sms_per_second > 0 and virtual:
            Load(virtual, sms_per_second, stop).start()
        return agent.run()
    finally:
        for modem in virtual:
            modem.close()
