"""The agent's command line: where each setting comes from, and one clear line (exit 2)
for anything wrong."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from agent.cli import _config, _setting, default_state_dir
from agent.modem import PortSpec, signal_percent


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_a_flag_wins_over_the_environment_which_wins_over_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "agent.toml"
    config_file.write_text(
        'server = "http://from-config"\nagent_key = "from-config"\nheartbeat-seconds = 15\n'
        'port = ["COM3,phone=628111,mapping=promo", "COM4"]\n[ussd]\nTELKOMSEL = "*808#"\n'
    )
    config = _config(str(config_file))
    monkeypatch.setenv("ZEROTP_SERVER", "http://from-env")
    monkeypatch.delenv("ZEROTP_AGENT_KEY", raising=False)
    flags = argparse.Namespace(server="http://from-flag", agent_key=None, heartbeat_seconds=None)

    assert _setting(flags, config, "server") == "http://from-flag"
    flags.server = None
    assert _setting(flags, config, "server") == "http://from-env"
    assert _setting(flags, config, "agent_key") == "from-config"
    assert _setting(flags, config, "heartbeat_seconds") == 15
    assert config["port"] == ["COM3,phone=628111,mapping=promo", "COM4"]
    assert config["ussd"] == {"TELKOMSEL": "*808#"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("run",), "--server is required (or $ZEROTP_SERVER)"),
        (("run", "--server", "http://x"), "--agent-key is required (or $ZEROTP_AGENT_KEY)"),
        (
            ("run", "--server", "http://x", "--agent-key", "k", "--port", "COM3,pin=1234"),
            "is not phone=... or mapping=...",
        ),
        (
            ("run", "--server", "http://x", "--agent-key", "k", "--port", "COM3,mapping=vip"),
            "mapping must be one of normal, promo, special",
        ),
        (
            ("run", "--server", "http://x", "--agent-key", "k", "--heartbeat-seconds", "0"),
            "--heartbeat-seconds must be more than 0",
        ),
        (
            ("run", "--server", "http://x", "--agent-key", "k", "--ussd", "*808#"),
            "--ussd wants OPERATOR=CODE",
        ),
        (
            (
                "smsgate",
                "--server",
                "http://x",
                "--agent-key",
                "k",
                "--listen",
                ":1",
                "--signing-key",
                "s",
            ),
            "--sim DEVICE:SLOT=PHONE is required",
        ),
        (
            ("simulate", "--server", "http://x", "--agent-key", "k", "--modems", "-1"),
            "--modems must be 0 or more",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line_saying_which(
    args: tuple[str, ...], says: str, tmp_path: Path
) -> None:
    result = agent(*args, "--state", str(tmp_path))
    assert result.returncode == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_config_file_that_is_not_toml_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text("server = \n")
    result = agent("run", "--config", str(bad))
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr


def test_the_environment_stands_for_the_flags(tmp_path: Path) -> None:
    """ZEROTP_SERVER, ZEROTP_AGENT_KEY and ZEROTP_AGENT_STATE: an unreachable server is no
    reason to stop (SMS wait in the outbox), a missing key is."""
    result = agent(
        "run",
        env={"ZEROTP_SERVER": "http://127.0.0.1:9", "ZEROTP_AGENT_STATE": str(tmp_path / "state")},
    )
    assert result.returncode == 2
    assert "--agent-key is required" in result.stderr
    assert not (tmp_path / "state").exists(), "nothing is written before the arguments hold"


def test_the_state_folder_defaults_to_the_platforms_data_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert default_state_dir() == Path("/data/zerotp-agent")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", r"C:\Users\sari\AppData\Local")
    assert default_state_dir().name == "zerotp-agent"
    assert str(default_state_dir()).startswith(r"C:\Users\sari\AppData\Local")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_state_dir() == Path.home() / "Library/Application Support/zerotp-agent"


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("COM3", PortSpec("COM3")),
        (
            "/dev/ttyUSB0,phone=+62 811-1234,mapping=promo",
            PortSpec("/dev/ttyUSB0", "628111234", "promo"),
        ),
        (" COM12 , mapping=special ", PortSpec("COM12", None, "special")),
    ],
)
def test_port_specs(spec: str, parsed: PortSpec) -> None:
    assert PortSpec.parse(spec) == parsed


@pytest.mark.parametrize(("rssi", "percent"), [(0, 0), (15, 48), (31, 100), (99, 0), (40, 100)])
def test_signal_is_csq_as_a_percent(rssi: int, percent: int) -> None:
    assert signal_percent(rssi) == percent
