"""Posting the outbox: a real Outbox, a real Server client, and a real HTTP server in the test
playing the agent API (fake_api.py), told per test what to answer. One `deliver_due()` pass
at a time, no thread, so that what is posted when is certain."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from agent.delivery import MAX_BACKOFF_SECONDS, Deliverer, backoff
from agent.outbox import Outbox
from agent.server import Server, ServerError
from tests.agent.fake_api import Answer, FakeAgentApi

KEY = "agent-key-7f3a9c"
UID_A = "8962100000000000001"
UID_B = "8962100000000000002"
PHONES = {UID_A: "6281100000001", UID_B: "6281100000002"}


@pytest.fixture
def api() -> Iterator[FakeAgentApi]:
    fake = FakeAgentApi()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def server(api: FakeAgentApi) -> Server:
    return Server(api.url, KEY, timeout=5)


@pytest.fixture
def deliverer(outbox: Outbox, server: Server) -> Deliverer:
    return Deliverer(outbox, server, stop=threading.Event())


def waiting(outbox: Outbox, text: str, *, uid: str = UID_A, second: int = 0) -> None:
    """An SMS in the outbox, waiting to be posted."""
    stamp = f"2025-03-14T09:26:{second:02d}+07:00"
    assert outbox.add_message(
        uid=uid,
        phone=PHONES[uid],
        sender="+6281234567890",
        text=text,
        stamp=stamp,
        received_at=f"2025-03-14T02:26:{second:02d}Z",
    )


def row(outbox: Outbox, text: str) -> sqlite3.Row:
    (found,) = [message for message in outbox.messages() if message["text"] == text]
    return found


def make_due_now(path: Path) -> None:
    """The backoff elapsed: every waiting message is due again."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("UPDATE messages SET next_attempt_at = 0 WHERE state = 'waiting'")
    finally:
        db.close()


# --- delivered ------------------------------------------------------------------------------


def test_a_200_settles_the_message_as_sent_with_every_field_posted(
    api: FakeAgentApi, outbox: Outbox, deliverer: Deliverer
) -> None:
    api.answer = Answer(200, '{"ok": true, "matched": true, "order_id": 41, "otp": "482913"}')
    waiting(outbox, "Kode OTP Anda 482913")
    (message,) = outbox.due()

    assert deliverer.deliver_due() == 1

    (request,) = api.requests
    assert request.path == "/api/modem/inbound-sms"
    assert request.headers["X-AGENT-KEY"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "uid": UID_A,
        "phone_number": "6281100000001",
        "from": "+6281234567890",
        "text": "Kode OTP Anda 482913",
        "received_at": "2025-03-14T02:26:00Z",
        "message_id": message.message_id,
    }
    sent = row(outbox, "Kode OTP Anda 482913")
    assert sent["state"] == "sent"
    assert sent["attempts"] == 1
    assert json.loads(sent["answer"])["order_id"] == 41

    assert deliverer.deliver_due() == 0
    assert len(api.requests) == 1


# --- order ----------------------------------------------------------------------------------


def test_a_modems_messages_go_oldest_first_and_a_failure_holds_the_younger_back(
    api: FakeAgentApi, path: Path, outbox: Outbox, deliverer: Deliverer
) -> None:
    waiting(outbox, "A first", uid=UID_A, second=1)
    waiting(outbox, "A second", uid=UID_A, second=2)
    waiting(outbox, "B only", uid=UID_B, second=3)
    api.by_text["A first"] = Answer(503, '{"error": {"code": "busy", "message": "later"}}')

    assert deliverer.deliver_due() == 1
    assert api.texts() == ["A first", "B only"]  # "A second" waits for "A first"
    assert row(outbox, "A second")["attempts"] == 0

    # While "A first" waits out its backoff, "A second" does not overtake it.
    assert deliverer.deliver_due() == 0
    assert api.texts() == ["A first", "B only"]

    del api.by_text["A first"]
    make_due_now(path)
    assert deliverer.deliver_due() == 2
    assert api.texts() == ["A first", "B only", "A first", "A second"]
    assert outbox.counts()["sent"] == 3


def test_a_modem_the_server_does_not_know_yet_is_not_posted(
    api: FakeAgentApi, outbox: Outbox, server: Server
) -> None:
    deliverer = Deliverer(outbox, server, stop=threading.Event(), ready=lambda uid: uid != UID_A)
    waiting(outbox, "A not synced", uid=UID_A, second=1)
    waiting(outbox, "B synced", uid=UID_B, second=2)

    assert deliverer.deliver_due() == 1

    assert api.texts() == ["B synced"]
    not_posted = row(outbox, "A not synced")
    assert not_posted["state"] == "waiting"
    assert not_posted["attempts"] == 0


# --- retried --------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [500, 502, 503, 408, "no server"])
def test_a_failure_worth_retrying_is_retried_with_backoff_capped_at_a_minute(
    failure: int | str, api: FakeAgentApi, path: Path, outbox: Outbox, deliverer: Deliverer
) -> None:
    if failure == "no server":
        api.stop()  # connection refused
    else:
        api.answer = Answer(int(failure), '{"error": {"code": "x", "message": "try later"}}')
    waiting(outbox, "Kode 1")

    for attempts, wait in enumerate([1, 2, 4, 8, 16, 32, 60, 60, 60], start=1):
        before = time.time()
        assert deliverer.deliver_due() == 0
        after = time.time()
        retried = row(outbox, "Kode 1")
        assert retried["state"] == "waiting"
        assert retried["attempts"] == attempts
        assert before + wait <= retried["next_attempt_at"] <= after + wait
        if failure != "no server":
            assert f"HTTP {failure}" in retried["last_error"]
        # Not tried again before its time.
        assert deliverer.deliver_due() == 0
        assert row(outbox, "Kode 1")["attempts"] == attempts
        make_due_now(path)

    expected_requests = 0 if failure == "no server" else 9
    assert len(api.requests) == expected_requests


def test_a_429_is_not_retried_before_its_retry_after(
    api: FakeAgentApi, outbox: Outbox, deliverer: Deliverer
) -> None:
    api.answer = Answer(429, '{"error": {"code": "throttled", "message": "slow down"}}', "7")
    waiting(outbox, "Kode 1")

    before = time.time()
    assert deliverer.deliver_due() == 0
    after = time.time()

    retried = row(outbox, "Kode 1")
    assert retried["state"] == "waiting"
    assert retried["attempts"] == 1
    assert before + 7 <= retried["next_attempt_at"] <= after + 7
    assert outbox.due(now=before + 6.9) == []
    assert deliverer.deliver_due() == 0
    assert len(api.requests) == 1


def test_a_2xx_answer_that_is_not_json_is_retried(
    api: FakeAgentApi, outbox: Outbox, deliverer: Deliverer
) -> None:
    api.answer = Answer(200, "<html>captive portal</html>")
    waiting(outbox, "Kode 1")

    assert deliverer.deliver_due() == 0

    retried = row(outbox, "Kode 1")
    assert retried["state"] == "waiting"
    assert retried["attempts"] == 1


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_a_refused_message_is_dead_lettered_with_the_answer_and_not_retried(
    status: int, api: FakeAgentApi, path: Path, outbox: Outbox, deliverer: Deliverer
) -> None:
    refusal = json.dumps({"error": {"code": "refused", "message": f"no ({status})"}})
    api.by_text["Kode 1"] = Answer(status, refusal)
    waiting(outbox, "Kode 1", second=1)
    waiting(outbox, "Kode 2", second=2)

    assert deliverer.deliver_due() == 2

    # A dead letter does not hold its modem's next message back.
    assert api.texts() == ["Kode 1", "Kode 2"]
    dead = row(outbox, "Kode 1")
    assert dead["state"] == "dead"
    assert dead["answer"] == f"{status} {refusal}"
    assert dead["attempts"] == 1
    (letter,) = outbox.dead_letters()
    assert letter["answer"] == f"{status} {refusal}"
    assert row(outbox, "Kode 2")["state"] == "sent"

    make_due_now(path)
    assert deliverer.deliver_due() == 0
    assert len(api.requests) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_leaves_the_message_waiting_and_is_reported_once(
    status: int, api: FakeAgentApi, outbox: Outbox, server: Server
) -> None:
    api.answer = Answer(status, '{"error": {"code": "bad_key", "message": "unknown key"}}')
    stop = threading.Event()
    refused: list[ServerError] = []

    def on_key_refused(error: ServerError) -> None:  # as the agent does: stop (exit 2)
        refused.append(error)
        stop.set()

    deliverer = Deliverer(outbox, server, stop=stop, on_key_refused=on_key_refused)
    waiting(outbox, "A 1", uid=UID_A, second=1)
    waiting(outbox, "B 1", uid=UID_B, second=2)

    assert deliverer.deliver_due() == 0

    assert len(refused) == 1
    assert refused[0].status == status
    assert refused[0].key_refused
    assert api.texts() == ["A 1"]
    for text in ("A 1", "B 1"):
        kept = row(outbox, text)
        assert kept["state"] == "waiting"
        assert kept["attempts"] == 0
        assert kept["next_attempt_at"] == 0
    assert [m.text for m in outbox.due()] == ["A 1", "B 1"]


# --- clock and backoff ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 503])
def test_the_server_clock_is_learned_from_the_date_header(
    status: int, api: FakeAgentApi, server: Server
) -> None:
    assert server.clock_offset is None
    assert server.now() == pytest.approx(time.time(), abs=1)
    api.answer = Answer(status, "{}", date=formatdate(time.time() + 3600, usegmt=True))

    try:
        server.inbound_sms({"text": "x"})
    except ServerError as exc:
        assert exc.status == status

    assert server.clock_offset == pytest.approx(3600, abs=2)
    assert server.now() - time.time() == pytest.approx(3600, abs=2)


def test_a_clock_offset_is_measured_against_the_true_time(
    api: FakeAgentApi, server: Server
) -> None:
    server.inbound_sms({"text": "x"})

    assert server.clock_offset == pytest.approx(0, abs=2)


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [backoff(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff(0) == 1
    assert MAX_BACKOFF_SECONDS == 60
    # A message retried for days (one try a minute) still gets a number.
    assert backoff(1025) == 60
    assert backoff(10**6) == 60


def test_backoff_is_what_a_retried_message_waits(
    api: FakeAgentApi, path: Path, outbox: Outbox, deliverer: Deliverer
) -> None:
    api.answer = Answer(503, "{}")
    waiting(outbox, "Kode 1")
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE messages SET attempts = 2000")  # down for a day and a half
    db.close()

    before = time.time()
    assert deliverer.deliver_due() == 0

    retried = row(outbox, "Kode 1")
    assert retried["attempts"] == 2001
    assert retried["next_attempt_at"] == pytest.approx(before + 60, abs=1)


def test_sync_and_heartbeat_go_in_batches_the_server_accepts(
    api: FakeAgentApi, server: Server
) -> None:
    """The server refuses a batch over MODEM_BATCH_MAX (default 1000) with a 413."""
    modems = [{"uid": f"SIM{n}", "phone_number": f"62811{n:06d}"} for n in range(2500)]
    server.sync(modems)
    server.heartbeat([{"uid": m["uid"], "can_order": True} for m in modems])
    assert [len(body["modems"]) for body in api.bodies("/api/modem/sync")] == [1000, 1000, 500]
    assert [len(body["modems"]) for body in api.bodies("/api/modem/heartbeat")] == [
        1000,
        1000,
        500,
    ]
