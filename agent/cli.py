"""The command line: `run`, `status`, `simulate`, `smsgate` (see agent/README.md).

Every setting comes from a flag, else the environment (`ZEROTP_SERVER`, `ZEROTP_AGENT_KEY`,
`ZEROTP_AGENT_STATE`), else the `--config` TOML file, else the default.
Exit codes: 0 after a clean stop (Ctrl-C, SIGTERM), 2 on bad arguments or a refused key.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from agent import __version__
from agent.modem import MAPPINGS
from agent.outbox import Outbox

log = logging.getLogger("zerotp.agent")

ENVIRONMENT = {
    "server": "ZEROTP_SERVER",
    "agent_key": "ZEROTP_AGENT_KEY",
    "state": "ZEROTP_AGENT_STATE",
}


class UsageError(Exception):
    """Bad arguments: one line, exit 2."""


def default_state_dir(name: str = "zerotp-agent") -> Path:
    """The platform's per-user data folder."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerotp-agent",
        description="ZeroTP Modempool agent: sells the numbers of your GSM modems on a ZeroTP "
        "server and reports every SMS they receive.",
    )
    parser.add_argument("--version", action="version", version=f"zerotp-agent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(sub: argparse.ArgumentParser, *, server: bool = True) -> None:
        if server:
            sub.add_argument("--server", help="the ZeroTP server's base URL ($ZEROTP_SERVER)")
            sub.add_argument(
                "--agent-key", help="your agent key, ztp_agent_... ($ZEROTP_AGENT_KEY)"
            )
        sub.add_argument(
            "--state",
            help="folder for the outbox and the log ($ZEROTP_AGENT_STATE; default: "
            f"{default_state_dir()})",
        )
        sub.add_argument("--config", help="a TOML file with any of these settings")
        sub.add_argument("-v", "--verbose", action="store_true", help="log every AT exchange")

    run = commands.add_parser("run", help="watch the modems and report their SMS")
    common(run)
    run.add_argument(
        "--port",
        action="append",
        metavar="SPEC",
        help="PATH or PATH,phone=DIGITS,mapping=normal|promo|special (repeat for more); "
        "without it every serial port that answers AT is used",
    )
    run.add_argument(
        "--scan-glob",
        action="append",
        metavar="PATTERN",
        help="also probe ports matching this pattern (e.g. /dev/serial/by-id/*)",
    )
    run.add_argument("--heartbeat-seconds", type=float, help="default 30")
    run.add_argument("--scan-seconds", type=float, help="new ports and SIM sweep; default 10")
    run.add_argument(
        "--ussd",
        action="append",
        metavar="OPERATOR=CODE",
        help="USSD code that tells the number, per operator (e.g. TELKOMSEL=*808#)",
    )

    status = commands.add_parser("status", help="the modems and the outbox of a state folder")
    common(status, server=False)

    simulate = commands.add_parser(
        "simulate", help="the real agent against virtual modems (no hardware needed)"
    )
    common(simulate)
    simulate.add_argument("--modems", type=int, help="how many virtual modems (default 5)")
    simulate.add_argument(
        "--answer-orders",
        action="store_true",
        help="answer each new order on them with an OTP SMS a few seconds later",
    )
    simulate.add_argument(
        "--sms-per-second",
        type=float,
        help="load mode: random SMS at this rate over all the modems",
    )
    simulate.add_argument("--heartbeat-seconds", type=float, help="default 30")
    simulate.add_argument(
        "--mapping",
        choices=MAPPINGS,
        help="operator pool of the virtual modems (default normal)",
    )

    smsgate = commands.add_parser("smsgate", help="Android phones running SMS Gateway for Android")
    common(smsgate)
    smsgate.add_argument("--listen", metavar="HOST:PORT", help="where its webhooks arrive")
    smsgate.add_argument("--signing-key", help="the webhook signing key set in the app")
    smsgate.add_argument(
        "--sim",
        action="append",
        metavar="DEVICE:SLOT=PHONE[,mapping=M]",
        help="a SIM of a phone (repeat for more)",
    )
    return parser


def _config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    return {key.replace("-", "_"): value for key, value in data.items()}


def _setting(
    args: argparse.Namespace, config: dict[str, Any], name: str, default: Any = None
) -> Any:
    """Flag, else environment, else config file, else default."""
    value = getattr(args, name, None)
    if value is not None:
        return value
    if name in ENVIRONMENT and os.environ.get(ENVIRONMENT[name]):
        return os.environ[ENVIRONMENT[name]]
    if name in config:
        return config[name]
    return default


def _required(args: argparse.Namespace, config: dict[str, Any], name: str) -> str:
    value = _setting(args, config, name)
    if not value:
        flag = "--" + name.replace("_", "-")
        hint = f" (or ${ENVIRONMENT[name]})" if name in ENVIRONMENT else ""
        raise UsageError(f"{flag} is required{hint}")
    return str(value)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in (value if isinstance(value, list) else [value])]


def _seconds(args: argparse.Namespace, config: dict[str, Any], name: str, default: float) -> float:
    value = _setting(args, config, name, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{name.replace('_', '-')} must be a number of seconds") from None
    if seconds <= 0:
        raise UsageError(f"--{name.replace('_', '-')} must be more than 0")
    return seconds


def _state(args: argparse.Namespace, config: dict[str, Any], default: Path) -> Path:
    state = Path(_setting(args, config, "state") or default).expanduser()
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--state {state}: {exc.strerror}") from None
    return state


def _logging(state: Path, verbose: bool) -> None:
    root = logging.getLogger("zerotp.agent")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.handlers.clear()
    file = RotatingFileHandler(
        state / "agent.log", maxBytes=1_000_000, backupCount=5, encoding="utf-8"
    )
    file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(file)
    root.addHandler(console)
    root.propagate = False


class StateLock:
    """Two agents never share a state folder: the second is refused with a clear message."""

    def __init__(self, state: Path) -> None:
        self.path = state / "agent.lock"
        self._file = open(self.path, "a+")  # held for the process's life
        try:
            if os.name == "nt":
                import msvcrt

                self._file.seek(0)
                msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            other = self._file.read().strip() or "?"
            self._file.close()
            raise UsageError(
                f"another agent (pid {other}) is already using the state folder {state}; "
                "give this one its own --state"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        self._file.close()


def _until_signal(work: Callable[[threading.Event], int]) -> int:
    """Run `work(stop)`; Ctrl-C and SIGTERM set `stop` for a clean finish."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        if stop.is_set():
            return
        log.info("stopping (signal %s)", signum)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, request_stop)
    return work(stop)


@contextmanager
def _workplace(args: argparse.Namespace, config: dict[str, Any], folder: str) -> Iterator[Outbox]:
    """The state folder (locked against a second agent), the log in it, and its outbox."""
    state = _state(args, config, default_state_dir(folder))
    lock = StateLock(state)
    _logging(state, args.verbose)
    outbox = Outbox(state / "outbox.sqlite3")
    try:
        yield outbox
    finally:
        outbox.close()
        lock.release()


def _refused(exc: object) -> int:
    print(f"zerotp-agent: the server refused the agent key ({exc})", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from agent.modem import PortSpec
    from agent.runner import Agent, Settings
    from agent.server import Server, ServerError

    server = Server(_required(args, config, "server"), _required(args, config, "agent_key"))
    try:
        ports = [PortSpec.parse(spec) for spec in _list(_setting(args, config, "port"))]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ussd: dict[str, str] = {}
    raw_ussd = _setting(args, config, "ussd")
    items = (
        raw_ussd.items()
        if isinstance(raw_ussd, dict)
        else (item.partition("=")[::2] for item in _list(raw_ussd))
    )
    for operator, code in items:
        if not operator or not code:
            raise UsageError("--ussd wants OPERATOR=CODE, e.g. TELKOMSEL=*808#")
        ussd[str(operator).strip().lower()] = str(code).strip()
    settings = Settings(
        ports=ports,
        scan_globs=_list(_setting(args, config, "scan_glob")),
        heartbeat_seconds=_seconds(args, config, "heartbeat_seconds", 30.0),
        scan_seconds=_seconds(args, config, "scan_seconds", 10.0),
        ussd=ussd,
    )
    with _workplace(args, config, "zerotp-agent") as outbox:

        def work(stop: threading.Event) -> int:
            agent = Agent(server=server, outbox=outbox, settings=settings, stop=stop)
            try:
                agent.check_key()
            except ServerError as exc:
                return _refused(exc)
            log.info(
                "agent %s for %s; state in %s", __version__, server.base_url, outbox.path.parent
            )
            code = agent.run()
            return _refused(agent.key_refused) if agent.key_refused else code

        return _until_signal(work)


def _status(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from agent.status import print_status

    state = Path(_setting(args, config, "state") or default_state_dir()).expanduser()
    return print_status(state)


def _simulate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from agent.server import Server
    from agent.simulator import simulate

    server = Server(_required(args, config, "server"), _required(args, config, "agent_key"))
    modems = int(_setting(args, config, "modems", 5))
    if modems < 0:
        raise UsageError("--modems must be 0 or more")
    rate = float(_setting(args, config, "sms_per_second", 0.0))
    heartbeat_seconds = _seconds(args, config, "heartbeat_seconds", 30.0)
    with _workplace(args, config, "zerotp-agent-simulator") as outbox:
        return _until_signal(
            lambda stop: simulate(
                server=server,
                outbox=outbox,
                modems=modems,
                answer_orders=bool(_setting(args, config, "answer_orders", False)),
                sms_per_second=rate,
                heartbeat_seconds=heartbeat_seconds,
                mapping=_setting(args, config, "mapping", "normal"),
                stop=stop,
            )
        )


def _smsgate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from agent.server import Server
    from agent.smsgate import parse_sim, run

    server = Server(_required(args, config, "server"), _required(args, config, "agent_key"))
    listen = _required(args, config, "listen")
    signing_key = _required(args, config, "signing_key")
    try:
        sims = [parse_sim(spec) for spec in _list(_setting(args, config, "sim"))]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not sims:
        raise UsageError("--sim DEVICE:SLOT=PHONE is required (one per SIM)")
    with _workplace(args, config, "zerotp-agent-smsgate") as outbox:
        return _until_signal(
            lambda stop: run(
                server=server,
                outbox=outbox,
                listen=listen,
                signing_key=signing_key,
                sims=sims,
                stop=stop,
            )
        )


COMMANDS = {"run": _run, "status": _status, "simulate": _simulate, "smsgate": _smsgate}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        config = _config(args.config)
        return COMMANDS[args.command](args, config)
    except UsageError as exc:
        print(f"zerotp-agent {args.command}: {exc}", file=sys.stderr)
        return 2
