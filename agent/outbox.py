"""The agent's durable outbox: every SMS is committed here before it leaves the SIM.

One SQLite file in the state folder. Modems hand in parts (one PDU each); a message is made
once all its parts are in, or 60 s after the first (then marked incomplete). Messages are
posted oldest first until the server answers 2xx; a refused one is kept as dead-lettered with
the server's answer. The modems table is what `status` prints.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.pdu import Deliver

# A part still missing this long after the first arrived: the parts present are sent.
PART_WAIT_SECONDS = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    phone TEXT NOT NULL,
    sender TEXT NOT NULL,
    reference INTEGER,
    total INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    pdu TEXT NOT NULL,
    stamp TEXT NOT NULL,          -- SMSC time stamp of this part, ISO 8601 with offset
    received_at TEXT NOT NULL,    -- the moment to report for the message (see message_time)
    first_seen REAL NOT NULL,
    message INTEGER,              -- the message it went into; NULL while waiting for siblings
    UNIQUE (uid, pdu)
);
CREATE INDEX IF NOT EXISTS parts_waiting ON parts (uid, sender, reference, total)
    WHERE message IS NULL;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    uid TEXT NOT NULL,
    phone TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    received_at TEXT NOT NULL,
    incomplete INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'waiting',   -- waiting | sent | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    answer TEXT,
    created_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS messages_waiting ON messages (id) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS messages_waiting_uid ON messages (uid, id) WHERE state = 'waiting';
CREATE TABLE IF NOT EXISTS modems (
    port TEXT PRIMARY KEY,
    uid TEXT,
    phone TEXT,
    number_source TEXT,
    provider TEXT,
    signal INTEGER,
    can_order INTEGER,
    mapping TEXT,
    present INTEGER NOT NULL DEFAULT 1,
    note TEXT,
    last_heartbeat_at REAL,
    last_sms_at REAL,
    updated_at REAL NOT NULL
);
"""


def message_id(uid: str, sender: str, stamp: str, text: str) -> str:
    """The stable id the server deduplicates on: the same SMS read twice (a restart before
    the SIM was emptied, an SMSGate retry) gives the same id."""
    digest = hashlib.sha256("\x1f".join((uid, sender, stamp, text)).encode("utf-8", "replace"))
    return "sms-" + digest.hexdigest()[:40]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# An SMSC stamp further than this from the (server-corrected) local clock is not trusted.
STAMP_TOLERANCE_SECONDS = 300.0


def received_time(
    stamp: datetime, seen_at: float, *, may_be_late: bool = False
) -> tuple[str, bool]:
    """The `received_at` to report: the SMSC stamp in UTC, unless it is more than five
    minutes from `seen_at` (the server's time when the SMS reached us), which then stands in.
    The server never matches an SMS to an order created after it, so a wrong clock on a modem
    or network must not decide. `may_be_late`: the SMS may have waited before it reached us
    (SMSGate retries for days), so an old stamp is kept and only one from the future is
    replaced. Returns (ISO time, whether the stamp was replaced)."""
    drift = stamp.timestamp() - seen_at
    if drift > STAMP_TOLERANCE_SECONDS or (-drift > STAMP_TOLERANCE_SECONDS and not may_be_late):
        return iso(datetime.fromtimestamp(seen_at, timezone.utc)), True
    return iso(stamp), False


@dataclass(frozen=True)
class Part:
    uid: str
    phone: str
    sender: str
    reference: int | None
    total: int
    seq: int
    pdu: str
    stamp: str
    received_at: str

    @classmethod
    def of(cls, sms: Deliver, *, uid: str, phone: str, pdu: str, received_at: str) -> Part:
        """The part a modem read: `sms` is `pdu` decoded."""
        return cls(
            uid=uid,
            phone=phone,
            sender=sms.sender,
            reference=sms.reference,
            total=sms.parts,
            seq=sms.part,
            pdu=pdu,
            stamp=sms.timestamp.isoformat(),
            received_at=received_at,
        )


@dataclass(frozen=True)
class Message:
    id: int
    message_id: str
    uid: str
    phone: str
    sender: str
    text: str
    received_at: str
    incomplete: bool
    attempts: int

    def body(self) -> dict[str, str]:
        """The inbound-sms request body."""
        return {
            "uid": self.uid,
            "phone_number": self.phone,
            "from": self.sender,
            "text": self.text,
            "received_at": self.received_at,
            "message_id": self.message_id,
        }


class Outbox:
    """Thread-safe: one connection, one lock; every write is one committed transaction."""

    def __init__(self, path: Path | str, *, part_wait_seconds: float = PART_WAIT_SECONDS) -> None:
        self.path = Path(path)
        self.part_wait_seconds = part_wait_seconds
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # WAL with synchronous=FULL: a committed SMS survives a power cut, not only a crash.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- taking SMS in ---------------------------------------------------------------------

    def add_part(self, part: Part, *, join: Sequence[str] | None = None) -> bool:
        """Commit one part (idempotent: the same PDU from the same modem is kept once).
        Returns False when it was already here. Complete messages are made at once."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO parts (uid, phone, sender, reference, total, seq, pdu,"
                " stamp, received_at, first_seen) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    part.uid,
                    part.phone,
                    part.sender,
                    part.reference,
                    part.total,
                    part.seq,
                    part.pdu,
                    part.stamp,
                    part.received_at,
                    now,
                ),
            )
            added = cursor.rowcount == 1
            if added:
                self._assemble(db, now, only=(part.uid, part.sender, part.reference, part.total))
        return added

    def add_message(
        self, *, uid: str, phone: str, sender: str, text: str, stamp: str, received_at: str
    ) -> bool:
        """Commit a whole message (the SMSGate bridge gets them whole). False if already here."""
        with self._transaction() as db:
            return self._insert_message(db, uid, phone, sender, text, stamp, received_at, False)

    def assemble_due(self, now: float | None = None) -> int:
        """Make messages of the groups whose missing parts waited too long."""
        with self._transaction() as db:
            return self._assemble(db, time.time() if now is None else now)

    def _insert_message(
        self,
        db: sqlite3.Connection,
        uid: str,
        phone: str,
        sender: str,
        text: str,
        stamp: str,
        received_at: str,
        incomplete: bool,
    ) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO messages (message_id, uid, phone, sender, text, received_at,"
            " incomplete, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (
                message_id(uid, sender, stamp, text),
                uid,
                phone,
                sender,
                text,
                received_at,
                int(incomplete),
                time.time(),
            ),
        )
        return cursor.rowcount == 1

    def _assemble(
        self,
        db: sqlite3.Connection,
        now: float,
        only: tuple[str, str, int | None, int] | None = None,
    ) -> int:
        from agent.pdu import decode_deliver, join_parts  # the bridge needs no PDU code

        where, args = "message IS NULL", []
        if only is not None:
            where += " AND uid = ? AND sender = ? AND reference IS ? AND total = ?"
            args = list(only)
        rows = db.execute(
            f"SELECT * FROM parts WHERE {where} ORDER BY uid, sender, reference, total, seq, id",  # noqa: S608
            args,
        ).fetchall()
        groups: dict[tuple, list[sqlite3.Row]] = {}
        for row in rows:
            groups.setdefault(
                (row["uid"], row["sender"], row["reference"], row["total"]), []
            ).append(row)
        made = 0
        for (uid, sender, _reference, total), group in groups.items():
            # One part per sequence number (a resent part with a new PDU counts once).
            by_seq = {row["seq"]: row for row in group}
            complete = len(by_seq) >= total
            if (
                not complete
                and now - min(row["first_seen"] for row in group) < self.part_wait_seconds
            ):
                continue
            ordered = [by_seq[seq] for seq in sorted(by_seq)]
            text = join_parts([decode_deliver(row["pdu"]) for row in ordered])
            first = ordered[0]
            stamp, received_at = first["stamp"], first["received_at"]
            self._insert_message(
                db, uid, first["phone"], sender, text, stamp, received_at, not complete
            )
            (into,) = db.execute(
                "SELECT id FROM messages WHERE message_id = ?",
                (message_id(uid, sender, stamp, text),),
            ).fetchone()
            db.executemany(
                "UPDATE parts SET message = ? WHERE id = ?", [(into, row["id"]) for row in group]
            )
            made += 1
        return made

    # --- sending out -----------------------------------------------------------------------

    def due(self, now: float | None = None, limit: int = 100) -> list[Message]:
        """Waiting messages, oldest first; none of a modem whose older message waits out a
        backoff (a modem's messages are posted oldest first)."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM messages m WHERE state = 'waiting' AND next_attempt_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.state = 'waiting'"
                " AND o.uid = m.uid AND o.id < m.id AND o.next_attempt_at > ?)"
                " ORDER BY id LIMIT ?",
                (now, now, limit),
            ).fetchall()
        return [
            Message(
                id=row["id"],
                message_id=row["message_id"],
                uid=row["uid"],
                phone=row["phone"],
                sender=row["sender"],
                text=row["text"],
                received_at=row["received_at"],
                incomplete=bool(row["incomplete"]),
                attempts=row["attempts"],
            )
            for row in rows
        ]

    def mark_sent(self, message: Message, answer: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET state = 'sent', answer = ?, done_at = ?,"
                " attempts = attempts + 1 WHERE id = ?",
                (answer[:2000], time.time(), message.id),
            )

    def mark_dead(self, message: Message, answer: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET state = 'dead', answer = ?, done_at = ?,"
                " attempts = attempts + 1 WHERE id = ?",
                (answer[:2000], time.time(), message.id),
            )

    def mark_retry(self, message: Message, error: str, next_attempt_at: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE id = ?",
                (error[:2000], next_attempt_at, message.id),
            )

    def dead_undecodable(self, *, uid: str, phone: str, pdu: str, error: str) -> None:
        """A PDU we cannot read still leaves the SIM only once it is kept here."""
        stamp = iso(datetime.now(timezone.utc))
        with self._transaction() as db:
            self._insert_message(db, uid, phone, "", pdu, pdu, stamp, True)
            db.execute(
                "UPDATE messages SET state = 'dead', answer = ?, done_at = coalesce(done_at, ?)"
                " WHERE message_id = ?",
                (f"undecodable PDU: {error}", time.time(), message_id(uid, "", pdu, pdu)),
            )

    # --- what `status` shows ---------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM messages GROUP BY state")
            counts = {"waiting": 0, "sent": 0, "dead": 0}
            counts.update({state: n for state, n in rows})
            (parts,) = self._db.execute(
                "SELECT count(*) FROM parts WHERE message IS NULL"
            ).fetchone()
        counts["parts_waiting"] = parts
        return counts

    def dead_letters(self, limit: int = 20) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(
                "SELECT id, uid, sender, text, answer, done_at FROM messages"
                " WHERE state = 'dead' ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()

    def messages(self) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute("SELECT * FROM messages ORDER BY id").fetchall()

    def modem_seen(self, port: str, **fields: object) -> None:
        """Record what `status` prints about the modem on `port` (upsert)."""
        fields["updated_at"] = time.time()
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        updates = ", ".join(f"{name} = excluded.{name}" for name in fields)
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO modems (port, {columns}) VALUES (?, {marks})"  # noqa: S608
                f" ON CONFLICT (port) DO UPDATE SET {updates}",
                (port, *fields.values()),
            )

    def modems_heartbeat_ok(self, uids: Sequence[str], moment: float) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE modems SET last_heartbeat_at = ? WHERE uid = ? AND present = 1",
                [(moment, uid) for uid in uids],
            )

    def modems(self) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(
                "SELECT m.*, (SELECT max(created_at) FROM messages WHERE messages.uid = m.uid)"
                " AS last_sms FROM modems m ORDER BY m.port"
            ).fetchall()
