"""The SMSGate bridge over real HTTP: webhooks posted to it exactly as the phone sends them
(raw body, X-Signature, X-Timestamp), and a small fake of the agent API on the other side
that records what reaches it (fake_api.py). No database: the server end-to-end tests are
elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from agent import smsgate
from agent.delivery import Deliverer
from agent.outbox import Outbox, message_id
from agent.server import Server
from agent.smsgate import Bridge, Sim, parse_sim
from tests.agent.fake_api import Answer, FakeAgentApi

KEY = "Zx9-signing-key"

# Device ids as in SMSGate's documented examples below.
# timezone.utc spelled so that the file also reads on Python 3.10
UTC = timezone(timedelta(0))

PHONE_A = "ffffffffceb0b1db0000018e937c815b"  # the sms:received examples' deviceId
PHONE_B = "ffffffffceb0b1db00000192672f2204"  # the system:ping example's deviceId
PHONE_C = "c0ffee0000000000000000000000000c"  # a phone with a single SIM configured

SIMS = (
    Sim(PHONE_A, 1, "6281100000001"),
    Sim(PHONE_A, 2, "6281100000002", "promo"),
    Sim(PHONE_B, 1, "6281100000003"),
    Sim(PHONE_B, 2, "6281100000004", "special"),
    Sim(PHONE_C, 1, "6281100000005"),
)

# --- SMSGate's documented payloads, verbatim ------------------------------------------------

# docs.sms-gate.app, "Features > Webhooks", "Step 5: Receive the Payload", tab sms:received
# (github.com/android-sms-gateway/docs-web docs/features/webhooks.md at af97537, 2026-08):
# the sender is `sender`; `phoneNumber` is deprecated and no longer in the example.
DOC_SMS_RECEIVED = textwrap.dedent("""\
    {
      "deviceId": "ffffffffceb0b1db0000018e937c815b",
      "event": "sms:received",
      "id": "Ey6ECgOkVVFjz3CL48B8C",
      "payload": {
        "messageId": "abc123",
        "message": "Android is always a sweet treat!",
        "sender": "6505551212",
        "recipient": "+1234567890",
        "simNumber": 1,
        "receivedAt": "2024-06-22T15:46:11.000+07:00"
      },
      "webhookId": "LreFUt-Z3sSq0JufY9uWB"
    }
""")

# The same example before the sender/recipient fields were added (docs-web
# docs/features/webhooks.md at e6dec86, 2025-12-16): apps not yet updated send this.
DOC_SMS_RECEIVED_2025 = textwrap.dedent("""\
    {
      "deviceId": "ffffffffceb0b1db0000018e937c815b",
      "event": "sms:received",
      "id": "Ey6ECgOkVVFjz3CL48B8C",
      "payload": {
        "messageId": "abc123",
        "message": "Android is always a sweet treat!",
        "phoneNumber": "6505551212",
        "simNumber": 1,
        "receivedAt": "2024-06-22T15:46:11.000+07:00"
      },
      "webhookId": "LreFUt-Z3sSq0JufY9uWB"
    }
""")

# docs.sms-gate.app, "Features > Webhooks", Step 5, tab sms:sent (same file and commit).
DOC_SMS_SENT = textwrap.dedent("""\
    {
      "deviceId": "ffffffffceb0b1db0000018e937c815b",
      "event": "sms:sent",
      "id": "Ey6ECgOkVVFjz3CL48B8C",
      "payload": {
        "messageId": "msg-456",
        "sender": "+1234567890",
        "recipient": "+9998887777",
        "simNumber": 1,
        "partsCount": 1,
        "sentAt": "2026-02-18T02:05:00.000+07:00"
      },
      "webhookId": "LreFUt-Z3sSq0JufY9uWB"
    }
""")

# docs.sms-gate.app, "Features > Health Checks", "Device Health", example payload
# (docs-web docs/features/health.md at af97537).
DOC_SYSTEM_PING = textwrap.dedent("""\
    {
      "deviceId": "ffffffffceb0b1db00000192672f2204",
      "event": "system:ping",
      "id": "mjDoocQLCsOIDra_GthuI",
      "payload": {
        "health": {
          "checks": {
            "messages:failed": {
              "description": "Failed messages for last hour",
              "observedUnit": "messages",
              "observedValue": 0,
              "status": "pass"
            },
            "connection:status": {
              "description": "Internet connection status",
              "observedUnit": "boolean",
              "observedValue": 1,
              "status": "pass"
            },
            "connection:transport": {
              "description": "Network transport type",
              "observedUnit": "flags",
              "observedValue": 4,
              "status": "pass"
            },
            "connection:cellular": {
              "description": "Cellular network type",
              "observedUnit": "index",
              "observedValue": 0,
              "status": "pass"
            },
            "battery:level": {
              "description": "Battery level in percent",
              "observedUnit": "percent",
              "observedValue": 94,
              "status": "pass"
            },
            "battery:charging": {
              "description": "Is the phone charging?",
              "observedUnit": "flags",
              "observedValue": 4,
              "status": "pass"
            }
          },
          "releaseId": 1,
          "status": "pass",
          "version": "1.0.0"
        }
      },
      "webhookId": "LreFUt-Z3sSq0JufY9uWB"
    }
""")


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def post(
    url: str,
    body: str | bytes,
    *,
    key: str = KEY,
    age: int = 0,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST as SMSGate does: the raw body, signed over body + X-Timestamp (Unix seconds,
    `age` seconds ago). A header given as "" is left out."""
    raw = body.encode() if isinstance(body, str) else body
    stamp = str(int(time.time()) - age)
    signature = hmac.new(key.encode(), raw + stamp.encode(), hashlib.sha256).hexdigest()
    sent = {
        "Content-Type": "application/json",
        "User-Agent": "me.capcom.smsgateway/1.0",
        "X-Signature": signature,
        "X-Timestamp": stamp,
    }
    sent.update(headers or {})
    return requests.post(url, data=raw, headers={k: v for k, v in sent.items() if v}, timeout=10)


@dataclass
class Setup:
    api: FakeAgentApi
    outbox: Outbox
    bridge: Bridge
    deliverer: Deliverer
    url: str

    def post(self, body: str | bytes, **kwargs: object) -> requests.Response:
        return post(self.url, body, **kwargs)  # type: ignore[arg-type]

    def stored(self) -> list:
        return self.outbox.messages()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    api = FakeAgentApi()
    api.start()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    server = Server(api.url, "agent-key", timeout=5)
    bridge = Bridge(server=server, outbox=outbox, signing_key=KEY, sims=SIMS)
    bridge.sync()
    stop = threading.Event()
    deliverer = Deliverer(outbox, server, stop=stop, ready=bridge.ready)
    bridge.deliverer = deliverer
    deliverer.start()
    host, port = bridge.start("127.0.0.1", 0)
    yield Setup(api, outbox, bridge, deliverer, f"http://{host}:{port}/webhooks/smsgate")
    bridge.close()
    stop.set()
    deliverer.wake.set()
    deliverer.join(10)
    outbox.close()
    api.stop()


def sms_received(
    text: str, *, device: str = PHONE_A, slot: object = 1, received_at: str | None = None
) -> str:
    """An sms:received body shaped like the app's current ones (sender and phoneNumber)."""
    stamp = received_at or datetime.now(timezone(timedelta(hours=7))).isoformat(
        timespec="milliseconds"
    )
    return json.dumps(
        {
            "deviceId": device,
            "event": "sms:received",
            "id": "Ey6ECgOkVVFjz3CL48B8C",
            "payload": {
                "messageId": "abc123",
                "message": text,
                "sender": "WhatsApp",
                "recipient": None,
                "phoneNumber": "WhatsApp",
                "simNumber": slot,
                "receivedAt": stamp,
            },
            "webhookId": "LreFUt-Z3sSq0JufY9uWB",
        }
    )


def settled(setup: Setup, count: int) -> Callable[[], bool]:
    """All `count` stored messages are sent."""
    return lambda: (
        len(setup.stored()) == count and all(row["state"] == "sent" for row in setup.stored())
    )


# --- sync -------------------------------------------------------------------------------------


def test_sync_sends_every_configured_sim(setup: Setup) -> None:
    (sync,) = setup.api.bodies("/api/modem/sync")
    assert sync["modems"] == [
        {"uid": f"smsgate-{s.device}-{s.slot}", "phone_number": s.phone}
        | {"provider": "SMSGate", "mapping": s.mapping}
        for s in SIMS
    ]
    assert {row["uid"] for row in setup.outbox.modems()} == {s.uid for s in SIMS}


# --- sms:received -----------------------------------------------------------------------------


@pytest.mark.parametrize("documented", [DOC_SMS_RECEIVED, DOC_SMS_RECEIVED_2025])
def test_documented_sms_reaches_the_server_once(setup: Setup, documented: str) -> None:
    answer = setup.post(documented)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True}
    # Committed before the answer.
    assert len(setup.stored()) == 1
    wait_for(settled(setup, 1))
    time.sleep(0.3)  # nothing more goes out
    (sms,) = setup.api.sms
    uid = f"smsgate-{PHONE_A}-1"
    text = "Android is always a sweet treat!"
    assert sms["uid"] == uid
    assert sms["phone_number"] == "6281100000001"
    assert sms["from"] == "6505551212"
    assert sms["text"] == text
    assert sms["message_id"] == message_id(uid, "6505551212", "2024-06-22T15:46:11.000+07:00", text)
    # The documented stamp is from 2024: an SMS that waited on the phone keeps its own time
    # (in UTC), so that it cannot complete an order made while it waited.
    assert sms["received_at"] == "2024-06-22T08:46:11Z"


def test_received_at_is_the_stamp_in_utc(setup: Setup) -> None:
    moment = datetime.now(UTC).replace(microsecond=123000) - timedelta(seconds=30)
    local = moment.astimezone(timezone(timedelta(hours=7))).isoformat(timespec="milliseconds")
    assert setup.post(sms_received("Kode 111-222", received_at=local)).status_code == 200
    utc = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # SMSGate's format in UTC
    assert setup.post(sms_received("Kode 333-444", received_at=utc)).status_code == 200
    wait_for(settled(setup, 2))
    first, second = setup.api.sms
    assert first["received_at"] == moment.replace(tzinfo=None).isoformat() + "Z"
    assert second["received_at"] == first["received_at"]


def test_a_received_at_from_the_future_gives_way_to_the_time_it_reached_us(
    setup: Setup,
) -> None:
    ahead = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert setup.post(sms_received("Kode 555-666", received_at=ahead)).status_code == 200
    wait_for(settled(setup, 1))
    (sms,) = setup.api.sms
    reported = datetime.fromisoformat(sms["received_at"].replace("Z", "+00:00"))
    assert abs(reported.timestamp() - time.time()) < 10


def test_a_retried_webhook_is_delivered_once(setup: Setup) -> None:
    body = sms_received("Your code is 123-456")
    assert setup.post(body).status_code == 200
    # SMSGate signs every attempt afresh: same body, new X-Timestamp.
    assert setup.post(body, age=-1).status_code == 200
    wait_for(settled(setup, 1))
    assert setup.post(body).status_code == 200  # a retry after delivery, too
    time.sleep(0.3)
    assert len(setup.api.sms) == 1
    assert len(setup.stored()) == 1


def test_the_same_message_id_with_other_text_is_another_sms(setup: Setup) -> None:
    # The messageId is a content hash and may repeat (both bodies say "abc123").
    assert setup.post(sms_received("Your code is 111-111")).status_code == 200
    assert setup.post(sms_received("Your code is 222-222")).status_code == 200
    wait_for(settled(setup, 2))
    assert [sms["text"] for sms in setup.api.sms] == [
        "Your code is 111-111",
        "Your code is 222-222",
    ]
    assert len({sms["message_id"] for sms in setup.api.sms}) == 2


def test_the_raw_body_is_what_is_signed(setup: Setup) -> None:
    # Gson escapes <, > and = in strings; the signature covers those bytes, not the text.
    body = sms_received("<#> Kode WhatsApp 123-456 =").replace("<", "\\u003c")
    body = body.replace(">", "\\u003e").replace("=", "\\u003d")
    assert "\\u003c#\\u003e" in body
    assert setup.post(body).status_code == 200
    wait_for(settled(setup, 1))
    assert setup.api.sms[0]["text"] == "<#> Kode WhatsApp 123-456 ="


def test_the_second_slot_is_its_own_modem(setup: Setup) -> None:
    assert setup.post(sms_received("Kode 5555", slot=2)).status_code == 200
    wait_for(settled(setup, 1))
    assert setup.api.sms[0]["uid"] == f"smsgate-{PHONE_A}-2"
    assert setup.api.sms[0]["phone_number"] == "6281100000002"


def test_no_sim_number_on_a_single_sim_phone(setup: Setup) -> None:
    assert setup.post(sms_received("Kode 7777", device=PHONE_C, slot=None)).status_code == 200
    wait_for(settled(setup, 1))
    assert setup.api.sms[0]["uid"] == f"smsgate-{PHONE_C}-1"


@pytest.mark.parametrize(
    ("device", "slot"),
    [
        ("0123456789abcdef0123456789abcdef", 1),  # a phone not configured
        (PHONE_A, 3),  # a slot not configured
        (PHONE_A, None),  # no simNumber on a two-SIM phone: which one?
    ],
)
def test_an_sms_for_an_unknown_sim_is_answered_200_and_dropped(
    setup: Setup, device: str, slot: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    answer = setup.post(sms_received("Kode 1234", device=device, slot=slot))
    assert answer.status_code == 200  # else the phone retries for two days
    assert setup.stored() == []
    assert "dropped" in caplog.text
    time.sleep(0.2)
    assert setup.api.sms == []


def test_other_events_are_ignored(setup: Setup) -> None:
    answer = setup.post(DOC_SMS_SENT)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "ignored": "sms:sent"}
    assert setup.stored() == []


# --- refused requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "kwargs"),
    [
        ("another key", {"key": "not-the-key"}),
        ("a forged signature", {"headers": {"X-Signature": "00" * 32}}),
        ("no X-Signature", {"headers": {"X-Signature": ""}}),
        ("no X-Timestamp", {"headers": {"X-Timestamp": ""}}),
        ("no headers", {"headers": {"X-Signature": "", "X-Timestamp": ""}}),
        ("a timestamp not the signed one", {"headers": {"X-Timestamp": "1700000000"}}),
        ("a 6-minute-old timestamp", {"age": 360}),
        ("a timestamp 6 minutes ahead", {"age": -360}),
    ],
)
def test_unsigned_or_stale_webhooks_are_refused(setup: Setup, how: str, kwargs: dict) -> None:
    answer = setup.post(DOC_SMS_RECEIVED, **kwargs)
    assert answer.status_code == 401, how
    assert set(answer.json()) == {"error"}
    assert setup.stored() == []
    time.sleep(0.1)
    assert setup.api.sms == []


def test_a_body_changed_after_signing_is_refused(setup: Setup) -> None:
    stamp = str(int(time.time()))
    signature = hmac.new(
        KEY.encode(), DOC_SMS_RECEIVED.encode() + stamp.encode(), hashlib.sha256
    ).hexdigest()
    forged = DOC_SMS_RECEIVED.replace("sweet treat", "bitter pill")
    answer = requests.post(
        setup.url,
        data=forged.encode(),
        headers={"X-Signature": signature, "X-Timestamp": stamp},
        timeout=10,
    )
    assert answer.status_code == 401
    assert setup.stored() == []


def test_http_errors(setup: Setup) -> None:
    got = requests.get(setup.url, timeout=10)
    assert got.status_code == 405
    assert got.headers["Allow"] == "POST"
    assert got.json() == {"error": "POST only"}
    assert requests.put(setup.url, data=b"{}", timeout=10).status_code == 405
    big = setup.post(b"{" + b" " * (64 * 1024) + b"}")
    assert big.status_code == 413
    assert setup.post(b"{not json").status_code == 400
    assert setup.post(b"[1, 2]").status_code == 400
    assert setup.post(json.dumps({"event": "sms:received"})).status_code == 400
    no_text = json.loads(sms_received("x"))
    del no_text["payload"]["message"]
    assert setup.post(json.dumps(no_text)).status_code == 400
    assert setup.post(sms_received("x", slot="one")).status_code == 400
    assert setup.stored() == []


# --- system:ping ------------------------------------------------------------------------------


def test_ping_heartbeats_that_phones_sims_and_answers_at_once(setup: Setup) -> None:
    setup.api.delay["/api/modem/heartbeat"] = 2.0
    started = time.monotonic()
    answer = setup.post(DOC_SYSTEM_PING)
    assert answer.status_code == 200
    assert time.monotonic() - started < 1.0
    wait_for(lambda: setup.api.bodies("/api/modem/heartbeat"))
    (beat,) = setup.api.bodies("/api/modem/heartbeat")
    assert beat == {
        "modems": [
            {"uid": f"smsgate-{PHONE_B}-1", "can_order": True},
            {"uid": f"smsgate-{PHONE_B}-2", "can_order": True},
        ]
    }
    # Recorded for `status` once the slow server answered.
    wait_for(
        lambda: all(
            row["last_heartbeat_at"]
            for row in setup.outbox.modems()
            if row["uid"].startswith(f"smsgate-{PHONE_B}-")
        ),
        timeout=5,
    )


def test_a_ping_from_an_unknown_phone_is_answered(setup: Setup) -> None:
    ping = DOC_SYSTEM_PING.replace(PHONE_B, "0123456789abcdef0123456789abcdef")
    assert setup.post(ping).status_code == 200
    time.sleep(0.2)
    assert setup.api.bodies("/api/modem/heartbeat") == []


# --- the server away --------------------------------------------------------------------------


def test_the_server_down_does_not_lose_the_sms(setup: Setup) -> None:
    setup.api.stop()  # connections refused from now on
    answer = setup.post(sms_received("Your code is 424-242"))
    assert answer.status_code == 200
    wait_for(lambda: setup.stored()[0]["attempts"] >= 1)
    row = setup.stored()[0]
    assert row["state"] == "waiting"
    assert row["last_error"]
    setup.api.start()  # back on the same port; the next try is a second or two away
    wait_for(settled(setup, 1), timeout=8)
    assert [sms["text"] for sms in setup.api.sms] == ["Your code is 424-242"]


# --- run() ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_run(
    api: FakeAgentApi, outbox: Outbox, port: int
) -> tuple[threading.Thread, threading.Event, list[int]]:
    """`smsgate.run` (the command's body) in a thread; its exit code lands in the list."""
    stop = threading.Event()
    result: list[int] = []
    runner = threading.Thread(
        target=lambda: result.append(
            smsgate.run(
                server=Server(api.url, "agent-key", timeout=5),
                outbox=outbox,
                listen=f"127.0.0.1:{port}",
                signing_key=KEY,
                sims=SIMS,
                stop=stop,
            )
        )
    )
    runner.start()
    return runner, stop, result


def test_run_syncs_listens_delivers_and_stops(tmp_path: Path) -> None:
    api = FakeAgentApi()
    api.start()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    port = free_port()
    runner, stop, result = start_run(api, outbox, port)
    try:
        wait_for(lambda: api.bodies("/api/modem/sync"))
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: _answers(url))
        assert post(url, sms_received("Kode 909-090")).status_code == 200
        wait_for(lambda: api.sms)
    finally:
        stop.set()
        runner.join(10)
    assert result == [0]
    assert api.sms[0]["text"] == "Kode 909-090"
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
    outbox.close()
    api.stop()


def test_run_keeps_sms_until_the_server_is_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server away at start: webhooks are still answered and kept, and posted only once
    the SIMs are synced (an SMS for a modem the server does not know would be a 404)."""
    monkeypatch.setattr(smsgate, "SYNC_RETRY_FIRST_SECONDS", 0.2)
    api = FakeAgentApi(port=free_port())  # not started: connections are refused
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    runner, stop, result = start_run(api, outbox, port)
    try:
        wait_for(lambda: _answers(url))
        assert post(url, sms_received("Kode 818-181")).status_code == 200
        time.sleep(0.3)
        (row,) = outbox.messages()
        assert (row["state"], row["attempts"]) == ("waiting", 0)  # held back, not refused
        api.start()
        wait_for(lambda: api.sms, timeout=5)
        assert api.bodies("/api/modem/sync")
    finally:
        stop.set()
        runner.join(10)
    assert result == [0]
    assert [sms["text"] for sms in api.sms] == ["Kode 818-181"]
    outbox.close()
    api.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 405
    except requests.ConnectionError:
        return False


def test_run_stops_with_2_when_the_key_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeAgentApi(by_path={"/api/modem/sync": Answer.error(401, "invalid_agent_key")})
    api.start()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    code = smsgate.run(
        server=Server(api.url, "wrong-key", timeout=5),
        outbox=outbox,
        listen="127.0.0.1:0",
        signing_key=KEY,
        sims=SIMS,
        stop=threading.Event(),
    )
    assert code == 2
    assert "invalid_agent_key" in caplog.text
    outbox.close()
    api.stop()


def test_run_refuses_a_bad_listen_address(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    code = smsgate.run(
        server=Server("http://127.0.0.1:9", "k"),
        outbox=outbox,
        listen="nowhere",
        signing_key=KEY,
        sims=SIMS,
        stop=threading.Event(),
    )
    assert code == 2
    outbox.close()


# --- parse_sim --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "sim"),
    [
        (f"{PHONE_A}:1=628111", Sim(PHONE_A, 1, "628111")),
        (f"{PHONE_A}:2=+62 811 1234 5678", Sim(PHONE_A, 2, "6281112345678")),
        (
            "Ey6ECgOkVV_jz3-L48B8C:1=628111,mapping=promo",
            Sim("Ey6ECgOkVV_jz3-L48B8C", 1, "628111", "promo"),
        ),
        (" dev:3=628111, mapping=special ", Sim("dev", 3, "628111", "special")),
        ("dev:1=628111,mapping=normal", Sim("dev", 1, "628111", "normal")),
    ],
)
def test_parse_sim(spec: str, sim: Sim) -> None:
    assert parse_sim(spec) == sim


def test_sim_uid() -> None:
    assert Sim(PHONE_A, 1, "628111").uid == f"smsgate-{PHONE_A}-1"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("628111", "DEVICE:SLOT= is missing"),
        ("dev=628111", "DEVICE:SLOT= is missing"),
        (":1=628111", "DEVICE:SLOT= is missing"),
        ("dev:0=628111", "SLOT must be"),
        ("dev:x=628111", "SLOT must be"),
        ("dev:-1=628111", "SLOT must be"),
        ("my dev:1=628111", "DEVICE has spaces"),
        ("dev:1=", "PHONE must be digits"),
        ("dev:1=0811-1234", "PHONE must be digits"),
        ("dev:1=62811abc", "PHONE must be digits"),
        ("dev:1=1234", "5 to 15 digits"),
        ("dev:1=6281112345678901", "5 to 15 digits"),
        ("dev:1=628111,mapping=vip", "mapping must be one of normal, promo, special"),
        ("dev:1=628111,pool=promo", "unknown option"),
    ],
)
def test_parse_sim_refuses(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match="bad --sim") as error:
        parse_sim(spec)
    message = str(error.value)
    assert says in message
    assert "\n" not in message
    assert "DEVICE:SLOT=PHONE[,mapping=normal|promo|special]" in message
