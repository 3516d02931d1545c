"""`python -m agent status` as a reseller runs it, on a state folder filled through the Outbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent.outbox import Outbox

REPO = Path(__file__).resolve().parents[2]


def status(state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEROTP")}
    return subprocess.run(
        [sys.executable, "-m", "agent", "status", "--state", str(state)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def line_of(output: str, port: str) -> list[str]:
    """The words of the modems table row of `port`."""
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [port]]
    return line.split()


def test_status_of_an_empty_state_folder_says_no_agent_has_run(tmp_path: Path) -> None:
    result = status(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "No agent has run" in result.stdout
    assert str(tmp_path) in result.stdout
    assert list(tmp_path.iterdir()) == []  # looking creates nothing


def test_status_of_a_folder_that_does_not_exist_says_no_agent_has_run(tmp_path: Path) -> None:
    result = status(tmp_path / "nowhere")

    assert result.returncode == 0, result.stderr
    assert "No agent has run" in result.stdout
    assert not (tmp_path / "nowhere").exists()


def test_status_lists_each_modem_and_the_outbox(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    now = time.time()
    outbox.modem_seen(
        "/dev/ttyUSB0",
        uid="89621000000000000011",
        phone="6281100000001",
        number_source="port spec",
        provider="Telkomsel",
        signal=74,
        can_order=1,
        mapping="normal",
        present=1,
    )
    outbox.modems_heartbeat_ok(["89621000000000000011"], now - 5)
    outbox.modem_seen(
        "/dev/ttyUSB1",
        uid="89621000000000000022",
        phone=None,
        provider="XL Axiata",
        signal=41,
        can_order=1,
        present=1,
        last_heartbeat_at=now - 3600,
    )
    outbox.modem_seen(
        "/dev/ttyUSB2",
        uid="89621000000000000033",
        phone="6281100000003",
        provider="Indosat",
        signal=90,
        can_order=0,
        present=0,
        last_heartbeat_at=now - 5,
    )
    for n, text in enumerate(("Kode 111", "Kode 222", "Kode 333", "Kode ditolak")):
        assert outbox.add_message(
            uid="89621000000000000011",
            phone="6281100000001",
            sender="TOKOPEDIA",
            text=text,
            stamp=f"2025-03-14T09:26:0{n}+07:00",
            received_at=f"2025-03-14T02:26:0{n}Z",
        )
    first, second, _third, refused = outbox.due()
    outbox.mark_sent(first, '{"ok": true}')
    outbox.mark_sent(second, '{"ok": true}')
    outbox.mark_dead(refused, '400 {"error": {"code": "invalid", "message": "bad uid"}}')
    outbox.close()

    result = status(tmp_path)

    assert result.returncode == 0, result.stderr
    out = result.stdout

    assert line_of(out, "/dev/ttyUSB0")[:6] == [
        "/dev/ttyUSB0",
        "89621000000000000011",
        "6281100000001",
        "Telkomsel",
        "74%",
        "yes",
    ]

    unknown = line_of(out, "/dev/ttyUSB1")
    assert unknown[:6] == [
        "/dev/ttyUSB1",
        "89621000000000000022",
        "number",
        "unknown",
        "XL",
        "Axiata",
    ]
    assert unknown[6:8] == ["41%", "no"]  # its last heartbeat is an hour old
    assert "not synced" in " ".join(unknown)

    unplugged = line_of(out, "/dev/ttyUSB2")
    assert unplugged[:6] == [
        "/dev/ttyUSB2",
        "89621000000000000033",
        "6281100000003",
        "Indosat",
        "90%",
        "no",  # a recent heartbeat, but the modem is gone
    ]
    assert unplugged[-1] == "unplugged"

    assert "Outbox: 1 waiting, 1 dead-lettered, 2 delivered, 0 parts awaiting the rest" in out
    (dead,) = [line for line in out.splitlines() if "Kode ditolak" in line]
    assert "89621000000000000011" in dead
    assert "TOKOPEDIA" in dead
    assert dead.endswith('-> 400 {"error": {"code": "invalid", "message": "bad uid"}}')


def test_status_of_a_folder_with_an_outbox_but_no_modem_says_so(tmp_path: Path) -> None:
    Outbox(tmp_path / "outbox.sqlite3").close()

    result = status(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Modems: none seen yet." in result.stdout
    assert "Outbox: 0 waiting, 0 dead-lettered, 0 delivered" in result.stdout
    assert "Dead letters" not in result.stdout
