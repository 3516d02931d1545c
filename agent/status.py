"""`python -m agent status`: the modems and the outbox of a state folder, for a person."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from agent.outbox import Outbox

# The server counts a modem online while its last heartbeat is this recent (its default).
ONLINE_SECONDS = 120


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def print_status(state: Path) -> int:
    path = state / "outbox.sqlite3"
    if not path.exists():
        print(f"No agent has run with the state folder {state} yet.")
        return 0
    outbox = Outbox(path)
    try:
        now = time.time()
        rows = [["PORT", "UID", "NUMBER", "OPERATOR", "SIGNAL", "ONLINE", "LAST SMS", "NOTE"]]
        for modem in outbox.modems():
            online = (
                bool(modem["present"])
                and modem["last_heartbeat_at"] is not None
                and now - modem["last_heartbeat_at"] <= ONLINE_SECONDS
            )
            note = modem["note"] or ""
            if not modem["present"]:
                note = "unplugged"
            elif not modem["phone"]:
                note = "number unknown: not synced" + (f"; {note}" if note else "")
            rows.append(
                [
                    modem["port"],
                    modem["uid"] or "-",
                    modem["phone"] or "number unknown",
                    modem["provider"] or "-",
                    "-" if modem["signal"] is None else f"{modem['signal']}%",
                    "yes" if online else "no",
                    _when(modem["last_sms"]),
                    note,
                ]
            )
        if len(rows) == 1:
            print("Modems: none seen yet.")
        else:
            print("Modems:")
            for line in _table(rows):
                print("  " + line)
        counts = outbox.counts()
        print(
            f"Outbox: {counts['waiting']} waiting, {counts['dead']} dead-lettered, "
            f"{counts['sent']} delivered, {counts['parts_waiting']} parts awaiting the rest"
        )
        dead = outbox.dead_letters()
        if dead:
            print("Dead letters (the server refused them; newest first):")
            for row in dead:
                print(
                    f"  #{row['id']} {_when(row['done_at'])} {row['uid']} from "
                    f"{row['sender'] or '?'}: {row['text'][:60]!r} -> {row['answer']}"
                )
    finally:
        outbox.close()
    return 0
