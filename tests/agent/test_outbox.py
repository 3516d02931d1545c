"""The agent's outbox on a real SQLite file: parts in, messages out, exactly once, and nothing
lost to a restart or a killed process. Parts are real SMS-DELIVER PDUs (agent.pdu), taken
in the way the modem loop takes them."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.outbox import PART_WAIT_SECONDS, Outbox, Part, message_id, received_time
from agent.pdu import decode_deliver, encode_deliver

REPO = Path(__file__).resolve().parents[2]

WIB = timezone(timedelta(hours=7))  # Jakarta: the SMSC stamps carry +07:00
STAMP = datetime(2025, 3, 14, 9, 26, 53, tzinfo=WIB)

UID = "8962100000000000001"
PHONE = "6281100000001"
SENDER = "+6281234567890"


def parts_of(pdus: Sequence[str], *, uid: str = UID, phone: str = PHONE) -> list[Part]:
    """The parts the modem loop hands in for these PDUs (seen just as the SMSC stamped them)."""
    parts = []
    for pdu in pdus:
        sms = decode_deliver(pdu)
        received_at, _ = received_time(sms.timestamp, sms.timestamp.timestamp())
        parts.append(Part.of(sms, uid=uid, phone=phone, pdu=pdu, received_at=received_at))
    return parts


def sms(text: str, *, sender: str = SENDER, stamp: datetime = STAMP, **options: object) -> Part:
    (part,) = parts_of(encode_deliver(sender, text, stamp, **options))
    return part


def texts(outbox: Outbox) -> list[str]:
    return [row["text"] for row in outbox.messages()]


# --- one part ---------------------------------------------------------------------------------


def test_a_single_part_sms_becomes_one_waiting_message(outbox: Outbox) -> None:
    part = sms("Kode OTP Anda 482913. Jangan berikan kode ini kepada siapa pun.")

    assert outbox.add_part(part) is True

    (message,) = outbox.due()
    assert message.uid == UID
    assert message.phone == PHONE
    assert message.sender == SENDER
    assert message.text == "Kode OTP Anda 482913. Jangan berikan kode ini kepada siapa pun."
    assert message.received_at == "2025-03-14T02:26:53Z"
    assert message.message_id == message_id(UID, SENDER, part.stamp, message.text)
    assert message.message_id.startswith("sms-")
    assert not message.incomplete
    assert message.attempts == 0
    assert outbox.counts() == {"waiting": 1, "sent": 0, "dead": 0, "parts_waiting": 0}


def test_the_same_pdu_read_again_after_a_restart_is_kept_once(path: Path) -> None:
    part = sms("Kode OTP Anda 482913")
    first = Outbox(path)
    assert first.add_part(part) is True
    assert first.add_part(part) is False
    first.close()

    again = Outbox(path)  # the agent restarted before the SIM was emptied
    try:
        assert again.add_part(part) is False
        assert texts(again) == ["Kode OTP Anda 482913"]
        assert len(again.due()) == 1
    finally:
        again.close()


def test_an_alphanumeric_sender_is_kept_as_its_name(outbox: Outbox) -> None:
    outbox.add_part(sms("Kode WhatsApp 123-456", sender="WhatsApp"))

    (message,) = outbox.due()
    assert message.sender == "WhatsApp"


# --- several parts ----------------------------------------------------------------------------

# A UCS2 text whose emoji straddles parts 1 and 2 (67 UTF-16 units a part with an 8-bit
# reference): the high surrogate ends part 1, the low one starts part 2.
HEAD = "Kode verifikasi Anda 731904 — jangan bagikan kode ini kepada siapapun"[:66]
LONG_TEXT = (
    HEAD.ljust(66, ".")
    + "🔐"
    + " Jika Anda tidak meminta kode ini, abaikan pesan ini. Kode berlaku 5 menit. "
    + "Layanan pelanggan: hubungi 188 dari nomor Anda, gratis, 24 jam sehari, 7 hari seminggu."
)


def test_parts_arriving_out_of_order_make_one_message_once_all_are_in(outbox: Outbox) -> None:
    pdus = encode_deliver(SENDER, LONG_TEXT, STAMP, split_surrogates=True)
    assert len(pdus) == 4
    first_text = decode_deliver(pdus[0]).text
    assert 0xD800 <= ord(first_text[-1]) <= 0xDBFF, "the emoji must really be split"
    parts = parts_of(pdus)

    for n, index in enumerate((2, 0, 3), start=1):
        assert outbox.add_part(parts[index]) is True
        assert outbox.messages() == []
        assert outbox.counts()["parts_waiting"] == n
    assert outbox.add_part(parts[1]) is True

    (message,) = outbox.due()
    assert message.text == LONG_TEXT
    assert not message.incomplete
    assert message.received_at == "2025-03-14T02:26:53Z"
    assert message.message_id == message_id(UID, SENDER, parts[0].stamp, LONG_TEXT)
    assert outbox.counts()["parts_waiting"] == 0


def test_a_message_takes_the_stamp_of_its_first_part_whatever_came_first(
    outbox: Outbox,
) -> None:
    later = STAMP + timedelta(seconds=4)
    first_parts = parts_of(encode_deliver(SENDER, LONG_TEXT, STAMP, split_surrogates=True))
    later_parts = parts_of(encode_deliver(SENDER, LONG_TEXT, later, split_surrogates=True))
    assert first_parts[0].reference == later_parts[1].reference

    for part in (later_parts[3], later_parts[1], first_parts[0], later_parts[2]):
        outbox.add_part(part)

    (message,) = outbox.due()
    assert message.text == LONG_TEXT
    assert message.received_at == "2025-03-14T02:26:53Z"
    assert message.message_id == message_id(UID, SENDER, STAMP.isoformat(), LONG_TEXT)


def test_parts_of_the_same_reference_from_another_sender_or_modem_are_not_joined(
    outbox: Outbox,
) -> None:
    pdus = encode_deliver(SENDER, LONG_TEXT, STAMP, reference=7)
    other_sender = encode_deliver("+6289999999999", LONG_TEXT, STAMP, reference=7)
    outbox.add_part(parts_of(pdus[:1])[0])
    outbox.add_part(parts_of(other_sender[1:2])[0])
    outbox.add_part(parts_of(pdus[1:2], uid="another-modem")[0])

    assert outbox.messages() == []
    assert outbox.counts()["parts_waiting"] == 3


def gsm7_parts() -> tuple[list[Part], list[str]]:
    """Three parts of GSM 7-bit text, each part's own text easy to tell apart."""
    text = "A" * 153 + "B" * 153 + "C" * 20
    pdus = encode_deliver(SENDER, text, STAMP)
    assert len(pdus) == 3
    return parts_of(pdus), [decode_deliver(pdu).text for pdu in pdus]


def test_a_part_missing_after_a_minute_is_sent_marked_incomplete(outbox: Outbox) -> None:
    parts, part_texts = gsm7_parts()
    assert outbox.add_part(parts[2]) is True
    assert outbox.add_part(parts[0]) is True
    start = time.time()

    assert outbox.assemble_due(now=start) == 0
    assert outbox.assemble_due(now=start + PART_WAIT_SECONDS - 1) == 0
    assert outbox.messages() == []

    assert outbox.assemble_due(now=start + PART_WAIT_SECONDS + 1) == 1
    (message,) = outbox.due()
    assert message.incomplete
    assert message.text == part_texts[0] + part_texts[2]  # the parts present, in order
    assert message.received_at == "2025-03-14T02:26:53Z"
    assert outbox.counts()["parts_waiting"] == 0

    # Nothing more to make on the next rounds.
    assert outbox.assemble_due(now=start + 10 * PART_WAIT_SECONDS) == 0
    assert len(outbox.messages()) == 1


def test_a_late_part_does_not_send_the_earlier_message_again(outbox: Outbox) -> None:
    parts, part_texts = gsm7_parts()
    outbox.add_part(parts[0])
    outbox.add_part(parts[2])
    outbox.assemble_due(now=time.time() + PART_WAIT_SECONDS + 1)
    (earlier,) = outbox.messages()

    assert outbox.add_part(parts[1]) is True  # the missing part, too late
    assert outbox.add_part(parts[1]) is False
    assert [dict(row) for row in outbox.messages()] == [dict(earlier)]
    assert outbox.counts()["parts_waiting"] == 1

    # It is not lost either: a minute on, it goes on its own, marked incomplete.
    assert outbox.assemble_due(now=time.time() + PART_WAIT_SECONDS + 1) == 1
    rows = outbox.messages()
    assert dict(rows[0]) == dict(earlier)
    assert [row["text"] for row in rows] == [part_texts[0] + part_texts[2], part_texts[1]]
    assert rows[1]["incomplete"] == 1


# --- the id and the time reported -------------------------------------------------------------


def test_message_id_is_stable_and_changes_with_any_of_its_inputs(tmp_path: Path) -> None:
    inputs = (UID, SENDER, STAMP.isoformat(), "Kode OTP Anda 482913")
    same = message_id(*inputs)
    assert message_id(*inputs) == same
    for index in range(4):
        changed = list(inputs)
        changed[index] += "0"
        assert message_id(*changed) != same, f"input {index} does not count"
    # The fields do not run into each other.
    assert message_id("ab", "c", "s", "t") != message_id("a", "bc", "s", "t")

    # The same SMS taken by two outboxes (a state folder lost and rebuilt) has the same id.
    ids = []
    for name in ("one.sqlite3", "two.sqlite3"):
        box = Outbox(tmp_path / name)
        box.add_part(sms("Kode OTP Anda 482913"))
        ids.append(box.due()[0].message_id)
        box.close()
    assert ids == [same, same]


@pytest.mark.parametrize("off_by", [0, 60, -60, 299, -299, 300, -300])
def test_a_stamp_within_five_minutes_is_reported_in_utc(off_by: float) -> None:
    seen_at = STAMP.timestamp() + off_by

    assert received_time(STAMP, seen_at) == ("2025-03-14T02:26:53Z", False)


@pytest.mark.parametrize("off_by", [301, -301, 3600, -7 * 3600, 86400 * 365])
def test_a_stamp_more_than_five_minutes_off_is_replaced_by_the_time_it_was_seen(
    off_by: float,
) -> None:
    seen_at = STAMP.timestamp() + off_by

    reported, replaced = received_time(STAMP, seen_at)

    assert replaced is True
    assert reported.endswith("Z")
    assert datetime.fromisoformat(reported.replace("Z", "+00:00")).timestamp() == seen_at


def test_a_late_sms_may_keep_an_old_stamp_but_never_one_from_the_future() -> None:
    # SMSGate phones retry a webhook for days: an old stamp is then the true one.
    day_late = STAMP.timestamp() + 86400
    assert received_time(STAMP, day_late, may_be_late=True) == ("2025-03-14T02:26:53Z", False)
    an_hour_early = STAMP.timestamp() - 3600
    reported, replaced = received_time(STAMP, an_hour_early, may_be_late=True)
    assert replaced is True
    assert datetime.fromisoformat(reported.replace("Z", "+00:00")).timestamp() == an_hour_early


# --- sending out, across restarts -------------------------------------------------------------


def test_waiting_messages_survive_a_restart_and_settle_by_mark(path: Path) -> None:
    box = Outbox(path)
    for n in range(3):
        box.add_part(sms(f"Kode {n}", stamp=STAMP + timedelta(seconds=n)))
    box.close()

    box = Outbox(path)
    first, second, third = box.due()
    assert [m.text for m in (first, second, third)] == ["Kode 0", "Kode 1", "Kode 2"]
    assert first.id < second.id < third.id

    box.mark_sent(first, '{"matched": true}')
    box.mark_dead(second, '400 {"error": "bad"}')
    now = time.time()
    box.mark_retry(third, "HTTP 503", now + 30)
    assert box.due(now=now) == []
    assert box.due(now=now + 29) == []
    (retried,) = box.due(now=now + 30)
    assert retried.id == third.id
    assert retried.attempts == 1
    box.close()

    box = Outbox(path)
    try:
        assert box.counts() == {"waiting": 1, "sent": 1, "dead": 1, "parts_waiting": 0}
        rows = {row["text"]: row for row in box.messages()}
        assert rows["Kode 0"]["state"] == "sent"
        assert rows["Kode 0"]["answer"] == '{"matched": true}'
        assert rows["Kode 1"]["state"] == "dead"
        assert rows["Kode 2"]["last_error"] == "HTTP 503"
        assert rows["Kode 2"]["next_attempt_at"] == pytest.approx(now + 30)
        (dead,) = box.dead_letters()
        assert dead["text"] == "Kode 1"
        assert dead["answer"] == '400 {"error": "bad"}'
        assert box.due(now=now + 30)[0].id == third.id
    finally:
        box.close()


def test_an_undecodable_pdu_is_kept_as_a_dead_letter(outbox: Outbox) -> None:
    pdu = "07912618010000F0040B9126" + "ZZ"

    outbox.dead_undecodable(uid=UID, phone=PHONE, pdu=pdu, error="not hex")
    outbox.dead_undecodable(uid=UID, phone=PHONE, pdu=pdu, error="not hex")  # read again

    assert outbox.due(now=time.time() + 3600) == []
    (row,) = outbox.messages()
    assert row["state"] == "dead"
    assert row["text"] == pdu
    assert row["uid"] == UID
    assert row["answer"] == "undecodable PDU: not hex"
    assert row["done_at"] is not None
    (dead,) = outbox.dead_letters()
    assert dead["text"] == pdu


# --- crash safety -----------------------------------------------------------------------------

KILLED_AFTER_ADD = """
import json, os, signal, sys
from agent.outbox import Outbox, Part
outbox = Outbox(sys.argv[1])
assert outbox.add_part(Part(**json.loads(sys.argv[2])))
os.kill(os.getpid(), signal.SIGKILL)
"""


def add_part_and_die(path: Path, part: Part) -> None:
    """add_part in a process of its own, killed (SIGKILL) the moment add_part returns."""
    process = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_ADD, str(path), json.dumps(asdict(part))],
        cwd=REPO,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()


def test_a_part_is_on_disk_once_add_part_returns_even_if_the_process_is_killed(
    path: Path,
) -> None:
    part = sms("Kode OTP Anda 482913")

    add_part_and_die(path, part)

    outbox = Outbox(path)
    try:
        (message,) = outbox.due()
        assert message.text == "Kode OTP Anda 482913"
        assert outbox.add_part(part) is False  # the SIM read again: not a second copy
        assert len(outbox.messages()) == 1
    finally:
        outbox.close()


def test_a_waiting_part_is_on_disk_once_add_part_returns_even_if_the_process_is_killed(
    path: Path,
) -> None:
    parts, _ = gsm7_parts()

    add_part_and_die(path, parts[1])

    # Not through Outbox: what the file itself holds.
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT seq, pdu, message FROM parts").fetchall() == [
            (2, parts[1].pdu, None)
        ]
    finally:
        db.close()
    outbox = Outbox(path)
    try:
        outbox.add_part(parts[0])
        outbox.add_part(parts[2])
        (message,) = outbox.due()
        assert message.text == "A" * 153 + "B" * 153 + "C" * 20
    finally:
        outbox.close()
